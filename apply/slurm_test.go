package apply

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
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

// fakeSqueue puts on PATH a squeue that fails as a busy controller does,
// touching a file each time it is asked, and returns that file.
func fakeSqueue(t *testing.T) string {
	bin := t.TempDir()
	asked := filepath.Join(bin, "asked")
	script := "#!/bin/sh\necho x >> " + asked + "\necho 'slurm_load_jobs error: Socket timed out on send/recv operation' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "squeue"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return asked
}

// squeue is asked five times while it fails, with injectable pauses.
func TestSqueueRetrying(t *testing.T) {
	asked := fakeSqueue(t)
	defer func(d time.Duration) { squeueRetry = d }(squeueRetry)
	squeueRetry = time.Millisecond
	_, err := squeueRetrying(context.Background(), []string{"1"})
	if err == nil || !strings.Contains(err.Error(), "Socket timed out") {
		t.Fatalf("err = %v, want squeue's error", err)
	}
	if b, _ := os.ReadFile(asked); strings.Count(string(b), "x") != 5 {
		t.Errorf("squeue was asked %d times, want 5", strings.Count(string(b), "x"))
	}
}

// Cancelling ends the pause between retries at once.
func TestSqueueRetryingCancel(t *testing.T) {
	asked := fakeSqueue(t)
	defer func(d time.Duration) { squeueRetry = d }(squeueRetry)
	squeueRetry = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := squeueRetrying(ctx, []string{"1"})
		done <- err
	}()
	// Once squeue has failed, the retry waits an hour.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(asked); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("squeue was never asked")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "squeue: stopped retrying") {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("returned %s after the cancel", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("squeueRetrying ignored the cancelled context")
	}
}

// TestEndedWithoutResult: what zen says of a job that ended without its
// step runner's result, from what Slurm says of it.
func TestEndedWithoutResult(t *testing.T) {
	mem := &schema.Resources{Memory: "50M"}
	for _, c := range []struct {
		js     job
		r      *schema.Resources
		status string
		reason string
	}{
		{job{id: "7", node: "n1", state: "FAILED", signal: 9}, mem, state.StatusFailed, "job 7 killed on n1 (signal KILL): over its memory limit, most likely (memory 50M)"},
		// The batch script's shell outlived its killed child.
		{job{id: "7", node: "n1", state: "FAILED", exit: 137}, mem, state.StatusFailed, "job 7 killed on n1 (signal KILL): over its memory limit, most likely (memory 50M)"},
		{job{id: "7", node: "n1", state: "FAILED", exit: 137}, nil, state.StatusFailed, "job 7 ended failed on n1 (exit 137) without a result: zen step-run could not store one (the node's slurmd log has its output)"},
		{job{id: "7", node: "n1", state: "FAILED", signal: 9}, nil, state.StatusFailed, "job 7 on n1 ended by signal 9 before zen reported a result"},
		{job{id: "7", node: "n1", state: "OUT_OF_MEMORY"}, mem, state.StatusFailed, "job 7 killed by Slurm on n1: out of memory (memory 50M)"},
		{job{id: "7", state: "CANCELLED"}, nil, state.StatusCancelled, "job 7 cancelled"},
		{job{id: "7", state: "FAILED", exit: 127}, nil, state.StatusFailed, "job 7 ended failed on its node before zen reported a result: is zen on the nodes at the stack's orchestrator.zen path?"},
	} {
		res := endedWithoutResult(&c.js, c.r)
		if res.Status != c.status || res.Reason != c.reason {
			t.Errorf("%+v: %s %q; want %s %q", c.js, res.Status, res.Reason, c.status, c.reason)
		}
	}
}
