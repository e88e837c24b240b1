package apply

import (
	"slices"
	"strings"
	"testing"
)

// TestContainerCommand: a secret's value is never on podman's command
// line, only its name; it reaches podman through its environment.
func TestContainerCommand(t *testing.T) {
	c := &container{
		image: "127.0.0.1:5000/base@sha256:" + strings.Repeat("a", 64), name: containerName("r1", "p", "s/x"),
		root: "/repo", ro: []string{"/work"}, rw: []string{"/work/p/s/outputs"},
		env: []string{"ZEN_OUTPUTS=/work/p/s/outputs", "MODE=fast"}, secrets: []string{"TOKEN=s3cr3t"},
	}
	argv := c.command([]string{"sh", "-c", "echo $TOKEN"})
	line := strings.Join(argv, " ")
	if strings.Contains(line, "s3cr3t") {
		t.Fatalf("secret value on the command line: %s", line)
	}
	for _, want := range []string{"--env TOKEN ", "--env MODE=fast", "--network none", "--tls-verify=false", "--name zen-r1-p-s_x",
		"--volume /repo:/repo:ro --workdir /repo", "--volume /work:/work:ro", "--volume /work/p/s/outputs:/work/p/s/outputs:rw",
		c.image + " sh -c echo $TOKEN"} {
		if !strings.Contains(line, want) {
			t.Errorf("command lacks %q: %s", want, line)
		}
	}
	if !slices.Contains(c.environ(), "TOKEN=s3cr3t") {
		t.Error("podman's environment lacks the secret")
	}
	c.network, c.image = true, "ghcr.io/org/img@sha256:"+strings.Repeat("b", 64)
	line = strings.Join(c.command([]string{"true"}), " ")
	if strings.Contains(line, "--network") || strings.Contains(line, "--tls-verify") {
		t.Errorf("network: true, a TLS registry: %s", line)
	}
}
