package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/zen-dev/zen/internal/wait"
	"github.com/zen-dev/zen/schema"
)

// zen speaks to Slurm through sbatch, squeue --json and scancel only,
// never by linking it: this file holds those commands and what zen reads
// from them.

// slurmPoll is how often squeue is asked how the jobs are doing;
// squeueTimeout how long one answer is waited for; squeueRetry the first
// pause before squeue is asked again after an error (then 2×, 3×, 4×).
var (
	slurmPoll     = 300 * time.Millisecond
	squeueTimeout = time.Minute
	squeueRetry   = time.Second
)

// squeueRetrying asks squeue, five times with growing pauses while it
// fails: a busy controller times out now and then. It stops when ctx
// ends, with ctx.Err().
func squeueRetrying(ctx context.Context, ids []string) (map[string]jobState, error) {
	states, err := squeue(ctx, ids)
	for try := 1; err != nil && try < 5; try++ {
		if werr := wait.Sleep(ctx, time.Duration(try)*squeueRetry); werr != nil {
			return nil, fmt.Errorf("squeue: stopped retrying after %v: %w", err, werr)
		}
		states, err = squeue(ctx, ids)
	}
	return states, err
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// jobState is a job's state and node, as squeue reports them.
type jobState struct {
	state, node string
	exit        int // -1: unknown
	signal      int // the signal that ended it, 0 for none
	// comment is what zen step-run left on the job when it could not
	// store a result (see NoteJob).
	comment string
	// reason is why a pending job waits.
	reason string
}

// terminal reports whether a job state is final.
func terminal(s string) bool {
	switch s {
	case "PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "SIGNALING", "STAGE_OUT":
		return false
	}
	return true
}

// squeue asks Slurm for the jobs' states. Slurm 22.05 writes job_state as
// a string, later releases as a list.
func squeue(parent context.Context, ids []string) (map[string]jobState, error) {
	// A controller that does not answer is asked again, not waited for.
	ctx, cancel := context.WithTimeout(parent, squeueTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "squeue", "--json", "-t", "all", "-j", strings.Join(ids, ",")).Output()
	if err := parent.Err(); err != nil {
		return nil, fmt.Errorf("squeue: %w", err)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("squeue: no answer from slurmctld in %s", squeueTimeout)
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("squeue: %s", strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("squeue: %w", err)
	}
	var q struct {
		Jobs []struct {
			ID       json.Number     `json:"job_id"`
			State    json.RawMessage `json:"job_state"`
			Nodes    string          `json:"nodes"`
			ExitCode json.RawMessage `json:"exit_code"`
			Comment  string          `json:"comment"`
			Reason   string          `json:"state_reason"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(out, &q); err != nil {
		return nil, fmt.Errorf("squeue --json: %w", err)
	}
	states := map[string]jobState{}
	for _, j := range q.Jobs {
		var s string
		if json.Unmarshal(j.State, &s) != nil {
			var list []string
			if json.Unmarshal(j.State, &list) == nil && len(list) > 0 {
				s = list[0]
			}
		}
		// 22.05 writes the exit status as a number (the wait status,
		// exit code in the high byte), later releases as an object.
		code, sig := exitStatus(j.ExitCode)
		states[j.ID.String()] = jobState{state: s, node: j.Nodes, exit: code, signal: sig, comment: j.Comment, reason: j.Reason}
	}
	return states, nil
}

// exitStatus reads a job's exit code and the signal that ended it (0:
// none; -1 for an unknown code). Slurm 22.05 writes the wait status as a
// number (exit code in the high byte, signal in the low bits), later
// releases an object.
func exitStatus(raw json.RawMessage) (code, signal int) {
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n >> 8, n & 0x7f
	}
	var obj struct {
		ReturnCode json.RawMessage `json:"return_code"`
		Signal     struct {
			ID json.RawMessage `json:"id"`
		} `json:"signal"`
	}
	if json.Unmarshal(raw, &obj) != nil {
		return -1, 0
	}
	// Numbers are plain in some releases, {set, infinite, number} in
	// others.
	num := func(raw json.RawMessage) (int, bool) {
		var n int
		if json.Unmarshal(raw, &n) == nil {
			return n, true
		}
		var v struct {
			Set    bool `json:"set"`
			Number int  `json:"number"`
		}
		if json.Unmarshal(raw, &v) == nil && v.Set {
			return v.Number, true
		}
		return 0, false
	}
	code = -1
	if n, ok := num(obj.ReturnCode); ok {
		code = n
	}
	if n, ok := num(obj.Signal.ID); ok {
		signal = n
	}
	return code, signal
}

// limit describes the step's resource limit of a kind, " (memory 4G)",
// or "" when it sets none.
func limit(r *schema.Resources, kind string) string {
	switch {
	case r == nil:
	case kind == "memory" && r.Memory != "":
		return " (memory " + r.Memory + ")"
	case kind == "time" && r.Time != "":
		return " (time " + r.Time + ")"
	}
	return ""
}

// NoteJob leaves why zen step-run could not store a result on its Slurm
// job, as the job's comment, for the apply that collects the job: a node
// that cannot reach the store has no other way to say so. It does
// nothing outside a Slurm job.
func NoteJob(why string) {
	id := os.Getenv("SLURM_JOB_ID")
	if id == "" {
		return
	}
	why = strings.Join(strings.Fields(why), " ")
	if len(why) > 500 {
		why = why[:500] + "…"
	}
	_ = exec.Command("scontrol", "update", "JobId="+id, "Comment=zen step-run: "+why).Run()
}

// scancel cancels the jobs ids, if any, as far as Slurm lets it.
func scancel(ids []string) {
	if len(ids) > 0 {
		_ = exec.Command("scancel", ids...).Run()
	}
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// SbatchArgs are the sbatch options a step's resources ask for: cpus per
// task, memory (4GiB and 4G alike are --mem=4G), gpus, a time limit
// (rounded up to the minute, as Slurm counts), a partition (over the
// stack's, which comes first), and extra flags as they are.
func SbatchArgs(r *schema.Resources) []string {
	if r == nil {
		return nil
	}
	var args []string
	if r.CPUs > 0 {
		args = append(args, fmt.Sprintf("--cpus-per-task=%d", r.CPUs))
	}
	if r.Memory != "" {
		m := strings.TrimSuffix(strings.TrimSuffix(r.Memory, "B"), "i")
		args = append(args, "--mem="+m)
	}
	if r.GPUs > 0 {
		args = append(args, fmt.Sprintf("--gpus=%d", r.GPUs))
	}
	if r.Time != "" {
		if d, err := time.ParseDuration(r.Time); err == nil && d > 0 {
			minutes := int((d + time.Minute - 1) / time.Minute)
			args = append(args, fmt.Sprintf("--time=%d:%02d:00", minutes/60, minutes%60))
		}
	}
	if r.Partition != "" {
		args = append(args, "--partition="+r.Partition)
	}
	return append(args, r.Sbatch...)
}
