package apply

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zen-dev/zen/internal/wait"
	"github.com/zen-dev/zen/progress"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// On a Slurm stack each step that must run is one Slurm job, submitted
// with sbatch all at once: a step's dependencies on the steps before it
// that run too are --dependency=afterok, so that Slurm cancels the
// dependents of a failed step and runs independent branches on. Cached
// steps are not submitted. The job runs `zen step-run` on its node (see
// RunRemoteStep); this apply waits for the jobs, shows their progress,
// and collects their results from the store.

// submitConcurrency bounds the step specs stored at once.
const submitConcurrency = 8

// slurm is the orchestrator of a Slurm stack.
type slurm struct {
	a       *applier
	zenPath string
	specs   map[*node]*StepSpec

	// The poller asks squeue how every job is doing, for all the waits at
	// once; failed is closed when it gave up, with err.
	mu       sync.Mutex
	jobs     []*job
	poll     sync.Once
	failed   chan struct{}
	err      error
	overhead time.Duration
	measured int
}

func newSlurm(a *applier) *slurm {
	zenPath := a.env.Stack.Orchestrator.String("zen")
	if zenPath == "" {
		zenPath = "zen"
	}
	return &slurm{a: a, zenPath: zenPath, specs: map[*node]*StepSpec{}, failed: make(chan struct{})}
}

// job is a submitted step.
type job struct {
	n       *node
	id      string
	state   string
	node    string
	exit    int
	signal  int
	comment string
	orphan  bool // cancelled by zen: its upstream failed
	done    chan struct{}
	// cancelled: zen cancelled it.
	cancelled bool
}

func (j *job) ID() string { return j.id }

func (*slurm) Traits() Traits { return Traits{Chains: true, Detaches: true} }

// Start stores what the jobs read from the store: the source tree, once
// for the whole apply, and each step's spec.
func (s *slurm) Start(ctx context.Context, tasks []*Task) error {
	a := s.a
	if a.env.StoreRef == "" || a.env.SourceTree == nil {
		return errors.New("slurm: the apply has no store reference or source tree to give the jobs")
	}
	for _, t := range tasks {
		for _, ev := range t.Step.Env {
			if ev.Secret != "" {
				return fmt.Errorf("pipeline %s: step %s: secrets are not passed to Slurm jobs yet: run it on a local stack", t.Pipeline.Name, t.Step.Name)
			}
		}
	}
	specs, err := a.storeSpecs(ctx, tasks)
	if err != nil {
		return err
	}
	s.specs = specs
	return nil
}

// Submit runs sbatch for the step, after the jobs it reads from.
func (s *slurm) Submit(_ context.Context, t *Task) (Job, error) {
	orch := s.a.env.Stack.Orchestrator
	spec := s.specs[t.n]
	var deps []string
	for _, j := range t.After {
		if !slices.Contains(deps, j.ID()) {
			deps = append(deps, j.ID())
		}
	}
	tag := specTag(spec.RunID, spec.Pipeline, spec.Step)
	args := []string{"--parsable", "--job-name=zen-" + spec.Pipeline + "." + spec.Step, "--output=/dev/null", "--kill-on-invalid-dep=yes"}
	if p := orch.String("partition"); p != "" {
		args = append(args, "--partition="+p)
	}
	if acct := orch.String("account"); acct != "" {
		args = append(args, "--account="+acct)
	}
	if len(deps) > 0 {
		args = append(args, "--dependency=afterok:"+strings.Join(deps, ":"))
	}
	args = append(args, SbatchArgs(t.Step.Resources)...)
	args = append(args, "--wrap", shellQuote(s.zenPath)+" step-run --store "+shellQuote(s.a.env.StoreRef)+" "+shellQuote(tag))
	// Not killed by Ctrl-C halfway: a job Slurm took is cancelled with
	// the rest.
	cmd := exec.Command("sbatch", args...)
	cmd.Env = stepEnv(os.Environ(), true)
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("step %s.%s: sbatch: %s", spec.Pipeline, spec.Step, msg)
	}
	id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";")
	s.a.report(t.n, progress.Queued, "%s %s submitted as job %s", t.Action.Symbol(), stepLabel(t.n), id)
	return s.add(t.n, id), nil
}

func (s *slurm) add(n *node, id string) *job {
	j := &job{n: n, id: id, state: "PENDING", done: make(chan struct{})}
	s.mu.Lock()
	s.jobs = append(s.jobs, j)
	s.mu.Unlock()
	return j
}

func (s *slurm) Reattach(t *Task, id string) (Job, error) {
	return s.add(t.n, id), nil
}

// Wait starts the poller with the first wait: by then every job of the
// apply is submitted.
func (s *slurm) Wait(ctx context.Context, j Job) error {
	s.poll.Do(func() { go s.watch(ctx) })
	select {
	case <-j.(*job).done:
		return nil
	case <-s.failed:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watch polls squeue until every job has ended, printing each change,
// until ctx ends.
func (s *slurm) watch(ctx context.Context) {
	s.mu.Lock()
	jobs := slices.Clone(s.jobs)
	s.mu.Unlock()
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.id
	}
	for len(jobs) > 0 && ctx.Err() == nil {
		states, err := squeueRetrying(ctx, ids)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if s.a.keepJobs {
				s.err = fmt.Errorf("%w (the run's jobs were left as they are)", err)
			} else {
				scancel(ids)
				s.err = fmt.Errorf("%w (the run's jobs were cancelled)", err)
			}
			close(s.failed)
			return
		}
		var orphans []string
		var left []*job
		for _, j := range jobs {
			st, ok := states[j.id]
			if st.state == "PENDING" && st.reason == "DependencyNeverSatisfied" && !j.orphan {
				// A job whose upstream failed: cancelled by Slurm with
				// --kill-on-invalid-dep, unless the cluster keeps such
				// jobs; then zen cancels it.
				j.orphan = true
				orphans = append(orphans, j.id)
			}
			if !ok {
				// Gone from squeue (MinJobAge passed): its result says.
				st = jobState{state: "COMPLETED"}
			}
			s.mu.Lock()
			j.exit, j.signal = st.exit, st.signal
			if st.comment != "" {
				j.comment = st.comment
			}
			changed := st.state != j.state || st.node != j.node && st.node != ""
			if changed {
				j.state, j.node = st.state, cmpOr(st.node, j.node)
			}
			s.mu.Unlock()
			if changed {
				switch j.state {
				case "RUNNING":
					s.a.report(j.n, progress.Running, "~ %s running on %s (job %s)", stepLabel(j.n), j.node, j.id)
				case "PENDING":
				default:
					s.a.progress(j.n, "  %s job %s %s", stepLabel(j.n), j.id, strings.ToLower(j.state))
				}
			}
			if terminal(j.state) {
				close(j.done)
			} else {
				left = append(left, j)
			}
		}
		scancel(orphans)
		jobs = left
		ids = ids[:0]
		for _, j := range jobs {
			ids = append(ids, j.id)
		}
		if len(jobs) > 0 {
			_ = wait.Sleep(ctx, slurmPoll)
		}
	}
}

func (s *slurm) Cancel(jobs ...Job) {
	var ids []string
	s.mu.Lock()
	for _, j := range jobs {
		j := j.(*job)
		j.cancelled = true
		ids = append(ids, j.id)
	}
	s.mu.Unlock()
	scancel(ids)
}

// Collect reads the result the job's step runner stored or, when the job
// ended without one, says what Slurm says happened.
func (s *slurm) Collect(ctx context.Context, jj Job) *state.StepResult {
	j := jj.(*job)
	s.mu.Lock()
	js := *j
	s.mu.Unlock()
	n := j.n
	if rr, err := s.a.readResult(ctx, n); err == nil {
		res := rr.Result
		res.Node = cmpOr(rr.Node, js.node)
		if res.Started != nil && res.Finished != nil && !rr.Started.IsZero() {
			// The step runner's time on the node beyond the step's own.
			s.mu.Lock()
			s.overhead += rr.Finished.Sub(rr.Started) - res.Finished.Sub(*res.Started)
			s.measured++
			s.mu.Unlock()
		}
		return res
	}
	return endedWithoutResult(&js, n.step.Resources)
}

// endedWithoutResult is the result of a job that ended without its step
// runner's: what Slurm says happened to it, with the limit r set that it
// most likely reached.
func endedWithoutResult(js *job, r *schema.Resources) *state.StepResult {
	res := &state.StepResult{Status: state.StatusFailed, Node: js.node}
	node := cmpOr(js.node, "its node")
	switch {
	case js.cancelled || js.state == "CANCELLED":
		res.Status, res.Reason = state.StatusCancelled, fmt.Sprintf("job %s cancelled", js.id)
	case js.state == "TIMEOUT":
		res.Reason = fmt.Sprintf("job %s killed by Slurm on %s: time limit reached%s", js.id, js.node, limit(r, "time"))
	case js.state == "OUT_OF_MEMORY":
		res.Reason = fmt.Sprintf("job %s killed by Slurm on %s: out of memory%s", js.id, js.node, limit(r, "memory"))
	case (js.signal == 9 || js.exit == 128+9) && limit(r, "memory") != "":
		// Where Slurm enforces memory without cgroups (OverMemoryKill),
		// a job over its limit is killed and merely FAILED: by signal 9,
		// or, where the batch script's shell outlived its killed child
		// (zen step-run), with the shell's exit 137.
		res.Reason = fmt.Sprintf("job %s killed on %s (signal KILL): over its memory limit, most likely%s", js.id, node, limit(r, "memory"))
	case js.signal != 0:
		res.Reason = fmt.Sprintf("job %s on %s ended by signal %d before zen reported a result", js.id, node, js.signal)
	case js.comment != "":
		res.Reason = fmt.Sprintf("job %s on %s: %s", js.id, node, js.comment)
	case js.exit == 127 || js.exit == 126:
		res.Reason = fmt.Sprintf("job %s ended %s on %s before zen reported a result: is zen on the nodes at the stack's orchestrator.zen path?", js.id, strings.ToLower(js.state), node)
	default:
		res.Reason = fmt.Sprintf("job %s ended %s on %s (exit %d) without a result: zen step-run could not store one (the node's slurmd log has its output)", js.id, strings.ToLower(js.state), node, js.exit)
	}
	return res
}

// Close reports the step runner's mean overhead on the nodes.
func (s *slurm) Close() {
	if s.measured > 0 {
		s.a.progress(nil, "  step runner: %s a step beyond the steps themselves (mean of %d)", (s.overhead / time.Duration(s.measured)).Round(time.Millisecond), s.measured)
	}
}
