package apply

import (
	"slices"
	"strings"
	"testing"

	"github.com/zen-dev/zen/schema"
)

func TestSbatchArgs(t *testing.T) {
	for _, tt := range []struct {
		r    *schema.Resources
		want []string
	}{
		{nil, nil},
		{&schema.Resources{CPUs: 4, Memory: "8GiB", GPUs: 1, Time: "90m"}, []string{"--cpus-per-task=4", "--mem=8G", "--gpus=1", "--time=1:30:00"}},
		{&schema.Resources{Memory: "512M", Time: "30s"}, []string{"--mem=512M", "--time=0:01:00"}},
		{&schema.Resources{Memory: "2GB", Time: "26h", Partition: "gpu", Sbatch: []string{"--exclusive", "--qos=high"}}, []string{"--mem=2G", "--time=26:00:00", "--partition=gpu", "--exclusive", "--qos=high"}},
	} {
		if got := SbatchArgs(tt.r); !slices.Equal(got, tt.want) {
			t.Errorf("SbatchArgs(%+v) = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestJobEnv(t *testing.T) {
	got := jobEnv([]string{"PATH=/bin", "HOME=/root", "ZEN_SECRET_API=x", "COSIGN_PASSWORD=y", "GITHUB_TOKEN=z", "db_password=w", "AWS_SECRET_ACCESS_KEY=v", "SLURM_CONF=/c"})
	if want := []string{"PATH=/bin", "HOME=/root", "SLURM_CONF=/c"}; !slices.Equal(got, want) {
		t.Errorf("jobEnv = %q, want %q", got, want)
	}
}

func TestTags(t *testing.T) {
	long := strings.Repeat("p", 80)
	a, b := resultTag("20261123-101500.000-abcdef", long, long+"x"), resultTag("20261123-101500.000-abcdef", long, long+"y")
	if a == b || len(a) > 128 || len(b) > 128 {
		t.Errorf("long names: %q and %q", a, b)
	}
	if got := specTag("r1", "p", "s"); got != "zen-spec-r1-p-s" {
		t.Errorf("specTag = %q", got)
	}
	if got := tagSafe("a/b c:d"); got != "a_b_c_d" {
		t.Errorf("tagSafe = %q", got)
	}
}
