package apply

import (
	"slices"
	"testing"
)

// One rule for what a step inherits, on this machine or through a
// scheduler to a node.
func TestStepEnv(t *testing.T) {
	environ := []string{"PATH=/bin", "HOME=/h", "ZEN_SECRET_X=1", "ZEN_STACK=a", "COSIGN_PASSWORD=pw", "cosign_key=k", "TMPDIR=/tmp",
		"GITHUB_TOKEN=z", "db_password=w", "AWS_SECRET_ACCESS_KEY=v", "SLURM_CONF=/c"}
	for _, tt := range []struct {
		offHost bool
		want    []string
	}{
		// A step here: none of zen's variables, no signing key, its own
		// TMPDIR; the user's credentials are the user's.
		{false, []string{"PATH=/bin", "HOME=/h", "GITHUB_TOKEN=z", "db_password=w", "AWS_SECRET_ACCESS_KEY=v", "SLURM_CONF=/c"}},
		// Through Slurm: zen's variables for zen step-run, which applies
		// the rule above again, but nothing that holds a secret.
		{true, []string{"PATH=/bin", "HOME=/h", "ZEN_STACK=a", "TMPDIR=/tmp", "SLURM_CONF=/c"}},
	} {
		if got := stepEnv(environ, tt.offHost); !slices.Equal(got, tt.want) {
			t.Errorf("stepEnv(offHost %v) = %q, want %q", tt.offHost, got, tt.want)
		}
	}
}
