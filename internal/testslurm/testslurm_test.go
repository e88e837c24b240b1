package testslurm

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCluster starts the two-node cluster and runs two jobs, the second
// after the first, each on its own node.
func TestCluster(t *testing.T) {
	if !Available() {
		if os.Getenv("CI") != "" {
			t.Fatal("Slurm is not installed: .ci/run installs slurm-wlm and munge")
		}
		t.Skip("Slurm is not installed (apt-get install slurm-wlm munge)")
	}
	dir := t.TempDir()
	c, err := Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), c.Env()...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	out := filepath.Join(dir, "out")
	j1 := run("sbatch", "--parsable", "-w", "n1", "-o", "/dev/null", "--wrap", "echo first $SLURMD_NODENAME >> "+out)
	j2 := run("sbatch", "--parsable", "-w", "n2", "-o", "/dev/null", "-d", "afterok:"+j1, "--kill-on-invalid-dep=yes", "--wrap", "echo second $SLURMD_NODENAME >> "+out)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var q struct {
			Jobs []struct {
				JobID    int    `json:"job_id"`
				JobState string `json:"job_state"`
			} `json:"jobs"`
		}
		if err := json.Unmarshal([]byte(run("squeue", "--json", "-t", "all")), &q); err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, j := range q.Jobs {
			if j.JobState == "COMPLETED" {
				done++
			}
		}
		if done == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs %s, %s not completed in 30 s: %+v", j1, j2, q.Jobs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(data); got != "first n1\nsecond n2\n" {
		t.Errorf("the jobs wrote %q, want the first on n1, then the second on n2", got)
	}
}
