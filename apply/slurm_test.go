package apply

import (
	"slices"
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
