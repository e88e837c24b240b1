package apply

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/zen-dev/zen/registry"
)

// container is how a step with an image runs: podman run of the image the
// plan pinned (name@sha256:…), with the step's contract as on the host.
//
//   - the repository is mounted read-only at its own path, and is the
//     working directory, so that the command and its paths read the same;
//   - the apply's work folder (inputs, parameters, upstream outputs) is
//     mounted read-only at its own path; the step's $ZEN_OUTPUTS, TMPDIR
//     and the folder of $ZEN_METRICS read-write over it: what the step
//     writes anywhere else is lost with the container;
//   - no network unless the step says network: true;
//   - resources.memory is the container's memory limit, swap included
//     (podman --memory, --memory-swap): over it, the kernel kills the
//     step, recorded as killed by signal KILL, as a process, and as out
//     of memory ("likely" where podman cannot tell, as on cgroup v1
//     hosts): such a container is kept until podman has said whether the
//     kernel's OOM killer ended it, then removed;
//   - the step's variables are zen's contract and its declared env, not
//     the host's environment: PATH, HOME and the rest are the image's. A
//     secret is passed by name (--env NAME), its value through podman's
//     own environment, so that it is never on a command line;
//   - it runs as zen's uid and gid, so outputs are owned as on the host;
//   - --init: the step is not PID 1, so signals act on it as on the host
//     (SIGTERM on cancel ends it; kill -9 $$ kills it);
//   - the container is named, so that a timeout or a cancel that kills
//     podman removes it too (podman rm -f).
type container struct {
	image   string // name@sha256:…
	name    string
	network bool
	// hostNetwork shares the host's network: a serving process listens on
	// a port of the host, as it would without an image.
	hostNetwork bool
	memory      string   // resources.memory, as Slurm spells it ("50M"); "" for no limit
	root        string   // the repository
	ro          []string // folders mounted read-only
	rw          []string // folders mounted read-write
	env         []string // NAME=value, on the command line
	secrets     []string // NAME=value, passed by name
}

// podman is the program that runs containers.
var podman = "podman"

// containerUlimits are the limits a container gets: podman's default
// raises them past what some hosts allow (the container then fails to
// start), so zen sets the common container defaults itself.
var containerUlimits = []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}

// command is the podman command line that runs argv in the container.
func (c *container) command(argv []string) []string {
	args := []string{podman}
	// crun, podman's default on some systems, fails on hosts with hybrid
	// cgroups; runc runs wherever podman does.
	if _, err := exec.LookPath("runc"); err == nil {
		args = append(args, "--runtime", "runc")
	}
	args = append(args, "run")
	if !c.kept() {
		args = append(args, "--rm")
	}
	args = append(args, "--init", "--quiet", "--name", c.name,
		"--pull", "missing", "--user", fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()))
	if os.Getuid() != 0 {
		// Rootless: the invoking user is the same uid in the container.
		args = append(args, "--userns", "keep-id")
	}
	args = append(args, containerUlimits...)
	if c.memory != "" {
		args = append(args, "--memory", c.memory, "--memory-swap", c.memory)
	}
	switch {
	case c.hostNetwork:
		args = append(args, "--network", "host")
	case !c.network:
		args = append(args, "--network", "none")
	}
	if registry.PlainHTTPImage(c.image) {
		// The loopback or private registry plan resolved it from over
		// plain HTTP (registry.ResolveImage).
		args = append(args, "--tls-verify=false")
	}
	args = append(args, "--volume", c.root+":"+c.root+":ro", "--workdir", c.root)
	for _, d := range c.ro {
		args = append(args, "--volume", d+":"+d+":ro")
	}
	for _, d := range c.rw {
		args = append(args, "--volume", d+":"+d+":rw")
	}
	for _, kv := range c.env {
		args = append(args, "--env", kv)
	}
	for _, kv := range c.secrets {
		name, _, _ := strings.Cut(kv, "=")
		args = append(args, "--env", name)
	}
	args = append(args, c.image)
	return append(args, argv...)
}

// environ is podman's own environment: zen's, less what no step gets
// (stepEnv), with the secrets' values podman passes on by name.
func (c *container) environ() []string {
	var env []string
	for _, kv := range stepEnv(os.Environ(), false) {
		// A DOCKER_CONFIG folder without config.json holds no
		// credentials: the keychain plan resolved with reads it so, but
		// podman refuses to pull.
		if dir, ok := strings.CutPrefix(kv, "DOCKER_CONFIG="); ok {
			if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
				continue
			}
		}
		env = append(env, kv)
	}
	return append(env, c.secrets...)
}

// remove kills and removes the container, if it is still there: podman
// killed by a timeout or a cancel leaves it running.
func (c *container) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, podman, "rm", "--force", "--ignore", "--time", "0", c.name)
	_ = cmd.Run()
}

// kept reports whether the container outlives its command, for
// oomKilled to ask about it: only one with a memory limit, since removing
// it after costs a podman call.
func (c *container) kept() bool { return c.memory != "" }

// oomKilled reports whether the kernel's OOM killer ended the container,
// as podman recorded it; false when podman cannot say.
func (c *container) oomKilled() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, podman, "inspect", "--type", "container", "--format", "{{.State.OOMKilled}}", c.name).Output()
	return err == nil && strings.TrimSpace(string(out)) == "true"
}

// containerName is a container's name for a step of a run: podman allows
// [a-zA-Z0-9][a-zA-Z0-9_.-]*.
func containerName(run, pipeline, step string) string {
	return "zen-" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			return r
		}
		return '_'
	}, run+"-"+pipeline+"-"+step)
}
