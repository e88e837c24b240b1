package testscript

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/zen-dev/zen/internal/failpoint"
)

// TestCrashSafety kills zen apply with SIGKILL at each of zen's failpoints
// (blobs uploaded but not their manifest, a signature stored but not its
// attestation, a step journaled, a state commit's objects written but not
// the ref, the ref moved but the journal kept), then at random points, and
// checks after every kill that:
//
//   - the state ref is a valid commit whose records all parse (zen state
//     check);
//   - zen plan works;
//   - the next zen apply finishes the job, and every step the killed apply
//     reported as succeeded is reused, not run again;
//   - no blob is ever uploaded twice to the registry.
//
// It kills at 5 random points in make test; ZEN_STRESS_KILLS sets how many
// (make stress: 50). ZEN_CRASH_SEED replays a sequence of kill points.
func TestCrashSafety(t *testing.T) {
	t.Parallel() // beside the scripts: each waits on processes as much as on the CPU
	if testing.Short() {
		t.Skip("kills applies at every failpoint: not in -short (make test runs it)")
	}
	kills := 5
	if n, err := strconv.Atoi(os.Getenv("ZEN_STRESS_KILLS")); err == nil && n > 0 {
		kills = n
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("ZEN_CRASH_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("ZEN_CRASH_SEED=%d", seed)
	rnd := rand.New(rand.NewPCG(seed, seed))

	c := newCrashRepo(t)
	c.commit("seed 0")
	start := time.Now()
	c.zen("apply")
	full := time.Since(start)
	t.Logf("an apply that is not killed takes %s", full.Round(time.Millisecond))

	survived, tried := 0, 0
	defer func() { stressReport(t, "kills", survived, tried) }()
	seedN := 0
	// First at each failpoint zen has, then at random points.
	for _, point := range failpoint.Points {
		seedN++
		tried++
		c.setSeed(seedN)
		c.commit(fmt.Sprintf("seed %d", seedN))
		stderr, killed := c.killedApply(time.Hour, "ZEN_FAILPOINT="+point)
		if !killed {
			t.Fatalf("failpoint %s: zen apply was not stopped there:\n%s", point, stderr)
		}
		run := c.afterKill("failpoint "+point, stderr)
		if point == failpoint.Journaled && (run == nil || !slices.ContainsFunc(slices.Collect(maps.Values(run.Steps)), func(s crashStep) bool { return s.Status == "cached" })) {
			t.Fatalf("failpoint %s: the step in the journal was not reused", point)
		}
		survived++
	}
	for i := 1; i <= kills; i++ {
		seedN++
		tried++
		c.setSeed(seedN)
		c.commit(fmt.Sprintf("seed %d", seedN))
		at := time.Duration(rnd.Int64N(int64(full) * 6 / 5))
		stderr, _ := c.killedApply(at)
		c.afterKill(fmt.Sprintf("kill %d at %s", i, at.Round(time.Millisecond)), stderr)
		survived++
	}
}

// afterKill checks what a killed apply left: the state ref parses, plan
// works, and the next apply finishes the job, reusing every step the
// killed one reported as succeeded and uploading no blob twice. It returns
// the next apply's run, nil when it had nothing to do.
func (c *crashRepo) afterKill(label, stderr string) *crashRun {
	t := c.t
	done := succeeded(stderr)
	if _, err := c.git("rev-parse", "--verify", "--quiet", "refs/zen/state^{commit}"); err != nil {
		t.Fatalf("%s: no state commit: %v", label, err)
	}
	c.zen("state", "check")
	c.zen("plan")
	out := c.zen("apply")
	if dup := c.uploadedTwice(); dup != "" {
		t.Fatalf("%s: blob %s uploaded twice", label, dup)
	}
	if !ranRE.MatchString(out) {
		// Stopped after every step finished: the runs were recorded, by
		// the killed apply or from its journal, and nothing runs again.
		// The journal's runs leave the baseline alone, so this apply
		// may move it ("baseline of crash moved").
		t.Logf("%s: after every step finished", label)
		return nil
	}
	run := c.latestRun()
	for _, step := range done {
		if st := run.Steps[step].Status; st != "cached" {
			t.Fatalf("%s: step %s had succeeded before the kill, but the next apply %s it (run %s)\nkilled apply:\n%s", label, step, st, run.ID, stderr)
		}
	}
	t.Logf("%s: %d steps had succeeded %v, all reused", label, len(done), done)
	return run
}

// ranRE matches the line apply prints for a run it made.
var ranRE = regexp.MustCompile(`(?m)^run \S+ of `)

// stressReport appends "what survived tried" to $ZEN_STRESS_REPORT, for
// make stress's summary.
func stressReport(t *testing.T, what string, ok, tried int) {
	p := os.Getenv("ZEN_STRESS_REPORT")
	if p == "" {
		return
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %d %d\n", what, ok, tried)
}

// crashRepo is a git repository with a pipeline whose steps write a few
// megabytes each, signed, stored in a registry that logs every blob it
// receives.
type crashRepo struct {
	t    *testing.T
	dir  string
	home string
	env  []string
}

const crashCUE = `package zen

pipelines: crash: {
	parameters: seed: 0
	steps: {
		a: {
			run: ["sh", "-c", "sleep 0.2; yes a-$SEED | head -c 3000000 > $ZEN_OUTPUTS/out"]
			env: SEED: "\(parameters.seed)"
			outputs: out: type: "file"
		}
		for s in ["b", "c", "d"] {
			(s): {
				run: ["sh", "-c", "sleep 0.3; cat $ZEN_INPUTS/in > $ZEN_OUTPUTS/out; yes \(s) | head -c 2000000 >> $ZEN_OUTPUTS/out"]
				inputs: in: steps.a.outputs.out
				outputs: out: type: "file"
			}
		}
		e: {
			run: ["sh", "-c", "mkdir $ZEN_OUTPUTS/out; for i in b c d; do cp $ZEN_INPUTS/$i $ZEN_OUTPUTS/out/$i; done"]
			inputs: {b: steps.b.outputs.out, c: steps.c.outputs.out, d: steps.d.outputs.out}
			outputs: out: type: "dir"
		}
	}
}

default_stack: "shared"
stacks: shared: {
	orchestrator: flavor: "local"
	artifact_store: {flavor: "oci", repository: "REGISTRY/crash"}
	signer: {flavor: "cosign", key: {secret: "cosign_key"}, public_key: "release.pub"}
}
`

func newCrashRepo(t *testing.T) *crashRepo {
	return newTestRepo(t, crashCUE, "COSIGN_PASSWORD=pw")
}

// newTestRepo makes a git repository holding cue as zen.cue, with
// REGISTRY replaced by the address of an in-process registry that logs
// uploads, a cosign key pair release.key/release.pub made with the
// COSIGN_PASSWORD in env, and ZEN_SECRET_COSIGN_KEY naming the key.
func newTestRepo(t *testing.T, cue string, env ...string) *crashRepo {
	root := t.TempDir()
	c := &crashRepo{t: t, dir: filepath.Join(root, "repo"), home: filepath.Join(root, "home")}
	for _, d := range []string{c.dir, c.home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	gitconfig := filepath.Join(c.home, ".gitconfig")
	if err := os.WriteFile(gitconfig, []byte("[user]\n\tname = Zen Test\n\temail = test@zen.invalid\n[init]\n\tdefaultBranch = main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(flaky(c.home, ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))))
	t.Cleanup(srv.Close)
	c.env = append(os.Environ(), "HOME="+c.home, "GIT_CONFIG_GLOBAL="+gitconfig, "GIT_CONFIG_NOSYSTEM=1", "NO_COLOR=1",
		"DOCKER_CONFIG="+filepath.Join(c.home, ".docker"), "ZEN_SECRET_COSIGN_KEY="+filepath.Join(c.dir, "release.key"), "ZEN_REMOTE=none")
	c.env = append(c.env, env...)
	c.write("zen.cue", strings.ReplaceAll(cue, "REGISTRY", strings.TrimPrefix(srv.URL, "http://")))
	c.write(".gitignore", ".zen/\n/release.key\n")
	if _, err := c.git("init", "-q"); err != nil {
		t.Fatal(err)
	}
	c.zen("keys", "generate", "--prefix", "release")
	return c
}

func (c *crashRepo) write(name, data string) {
	if err := os.WriteFile(filepath.Join(c.dir, name), []byte(data), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func (c *crashRepo) setSeed(i int) {
	b, err := os.ReadFile(filepath.Join(c.dir, "zen.cue"))
	if err != nil {
		c.t.Fatal(err)
	}
	re := regexp.MustCompile(`parameters: seed: \d+`)
	c.write("zen.cue", re.ReplaceAllString(string(b), fmt.Sprintf("parameters: seed: %d", i)))
}

func (c *crashRepo) commit(msg string) {
	if _, err := c.git("add", "-A"); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.git("commit", "-q", "-m", msg); err != nil {
		c.t.Fatal(err)
	}
}

func (c *crashRepo) git(args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env = c.dir, c.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// zen runs zen in the repository and fails the test unless it succeeds.
func (c *crashRepo) zen(args ...string) string {
	cmd := exec.Command("zen", args...)
	cmd.Dir, cmd.Env = c.dir, c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("zen %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// killedApply starts zen apply with env added and kills it with SIGKILL
// after d (or lets it finish, when it is quicker). It returns what the
// apply wrote to stderr, and whether it died of SIGKILL.
func (c *crashRepo) killedApply(d time.Duration, env ...string) (string, bool) {
	cmd := exec.Command("zen", "apply")
	cmd.Dir, cmd.Env = c.dir, append(slices.Clip(c.env), env...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	// Its steps too: a killed apply's children are orphans, as in life,
	// but they must not write into the next apply's files.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // steps left running
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return errb.String(), ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// succeeded lists the steps an apply reported as succeeded.
func succeeded(stderr string) []string {
	var steps []string
	for _, m := range regexp.MustCompile(`(?m)^✓ crash\.(\w+) succeeded`).FindAllStringSubmatch(stderr, -1) {
		steps = append(steps, m[1])
	}
	return steps
}

type crashRun struct {
	ID    string               `json:"id"`
	Steps map[string]crashStep `json:"steps"`
}

type crashStep struct {
	Status string `json:"status"`
}

func (c *crashRepo) latestRun() *crashRun {
	var r crashRun
	if err := json.Unmarshal([]byte(c.zen("runs", "show", "latest", "--output", "json")), &r); err != nil {
		c.t.Fatal(err)
	}
	return &r
}

// uploadedTwice returns a blob digest the registry received more than
// once, "" if none.
func (c *crashRepo) uploadedTwice() string {
	b, err := os.ReadFile(filepath.Join(c.home, "registry-uploads"))
	if err != nil {
		c.t.Fatal(err)
	}
	lines := strings.Fields(string(b))
	slices.Sort(lines)
	for i := 1; i < len(lines); i++ {
		if lines[i] == lines[i-1] {
			return lines[i]
		}
	}
	return ""
}
