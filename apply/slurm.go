package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zen-dev/zen/internal/wait"
	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// On a Slurm stack each step that must run is one Slurm job, submitted
// with sbatch all at once: a step's dependencies on the steps before it
// that run too are --dependency=afterok, so that Slurm cancels the
// dependents of a failed step and runs independent branches on. Cached
// steps are not submitted. The job runs `zen step-run` on its node (see
// RunRemoteStep); this apply waits for the jobs, shows their progress,
// and collects their results from the store. zen speaks to Slurm through
// sbatch, squeue --json and scancel only.

// slurmPoll is how often squeue is asked how the jobs are doing;
// squeueTimeout how long one answer is waited for; squeueRetry the first
// pause before squeue is asked again after an error (then 2×, 3×, 4×).
var (
	slurmPoll     = 300 * time.Millisecond
	squeueTimeout = time.Minute
	squeueRetry   = time.Second
)

// submitConcurrency bounds the step specs stored, and the sbatch commands
// run, at once.
const submitConcurrency = 8

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
}

// executeSlurm runs every pipeline's steps on the Slurm cluster of the
// stack, filling in each node's result.
func (a *applier) executeSlurm(ctx context.Context) error {
	orch := a.env.Stack.Orchestrator
	zenPath := orch.String("zen")
	if zenPath == "" {
		zenPath = "zen"
	}
	if a.env.StoreRef == "" || a.env.SourceTree == nil {
		return errors.New("slurm: the apply has no store reference or source tree to give the jobs")
	}
	for _, n := range a.nodes {
		if n.planned.Runs() {
			for _, ev := range n.step.Env {
				if ev.Secret != "" {
					return fmt.Errorf("pipeline %s: step %s: secrets are not passed to Slurm jobs yet: run it on a local stack", n.pr.pipeline.Name, n.step.Name)
				}
			}
		}
	}
	// The source tree, once for the whole apply.
	src, err := os.MkdirTemp("", "zen-source-")
	if err != nil {
		return err
	}
	defer removeAll(src)
	tree := src + "/tree"
	if err := a.env.SourceTree(tree); err != nil {
		return fmt.Errorf("source tree: %w", err)
	}
	sd, err := a.env.Store.Push(ctx, tree, "source")
	if err != nil {
		return fmt.Errorf("push the source tree: %w", err)
	}

	submitted := time.Now()
	sets, err := Sets(a.plan.Overrides)
	if err != nil {
		return err
	}
	a.source = sd.Digest
	// What each step's key is made of, but for the outputs of the steps
	// before it that run too: those are filled in as they are collected.
	var order []*node
	for _, n := range a.nodes {
		if !n.planned.Runs() {
			n.useCached()
		}
	}
	for _, n := range a.nodes {
		if n.planned.Runs() {
			if n.fp, err = plan.Fingerprint(n.step, a.env.Sources, n.upstreamDigests()); err != nil {
				return fmt.Errorf("pipeline %s: step %s: %w", n.pr.pipeline.Name, n.step.Name, err)
			}
			order = append(order, n)
		}
	}
	// A {model, stage} input is verified here, as a local apply does before
	// the step reads it: the nodes hold no key, and check only its content.
	verified := map[string]bool{}
	for _, n := range order {
		for _, in := range n.step.Inputs {
			d := n.planned.Fingerprint.Inputs[in.Name]
			if in.Kind != schema.InputModel || verified[d] {
				continue
			}
			ms, ok := a.env.Store.(registry.ModelStore)
			if !ok {
				return fmt.Errorf("step %s.%s: input %s: artifact store %s holds no models", n.pr.pipeline.Name, n.step.Name, in.Name, a.env.Store)
			}
			if err := a.verifyStageInput(ctx, ms, in.Model, in.Stage, d); err != nil {
				return fmt.Errorf("step %s.%s: input %s: %w", n.pr.pipeline.Name, n.step.Name, in.Name, err)
			}
			verified[d] = true
		}
	}
	// The specs first, pushed a few at once: they need no job ids.
	specs := map[*node]*StepSpec{}
	for _, n := range order {
		spec := &StepSpec{Version: specVersion, RunID: n.pr.run.ID, Pipeline: n.pr.pipeline.Name, Step: n.step.Name, Source: sd.Digest, SourceCommit: n.pr.run.SourceCommit, Inputs: map[string]string{}, Env: n.env, Sets: sets}
		for _, in := range n.step.Inputs {
			switch in.Kind {
			case schema.InputStep:
				if up := n.pr.nodes[in.Step]; !up.planned.Runs() {
					spec.Inputs[in.Name] = up.res.Outputs[in.Output].Digest
				}
			case schema.InputModel:
				spec.Inputs[in.Name] = n.planned.Fingerprint.Inputs[in.Name]
			}
		}
		specs[n] = spec
	}
	// Every one is tried: the error names each that failed.
	errs := make([]error, len(order))
	var g errgroup.Group
	g.SetLimit(submitConcurrency)
	for i, n := range order {
		g.Go(func() error {
			spec := specs[n]
			if err := putJSON(ctx, a.env.Store, specTag(spec.RunID, spec.Pipeline, spec.Step), "step-spec", spec); err != nil {
				errs[i] = fmt.Errorf("step %s.%s: store its spec: %w", spec.Pipeline, spec.Step, err)
			}
			return nil
		})
	}
	g.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Once for all the specs: the nodes read them from the store.
	if err := a.env.Store.Close(); err != nil {
		return fmt.Errorf("store the step specs: %w", err)
	}

	// Then the jobs, in order: a job names the jobs it waits for.
	var jobs []*job
	byNode := map[*node]*job{}
	cancelAll := func() {
		var ids []string
		for _, j := range jobs {
			ids = append(ids, j.id)
		}
		scancel(ids)
	}
	// In waves: the steps whose upstream jobs are all submitted go at
	// once, since sbatch takes a while each.
	var mu sync.Mutex
	submit := func(n *node) error {
		spec := specs[n]
		var deps []string
		mu.Lock()
		for _, up := range n.step.Upstream() {
			if j := byNode[n.pr.nodes[up]]; j != nil && !slices.Contains(deps, j.id) {
				deps = append(deps, j.id)
			}
		}
		mu.Unlock()
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
		args = append(args, SbatchArgs(n.step.Resources)...)
		args = append(args, "--wrap", shellQuote(zenPath)+" step-run --store "+shellQuote(a.env.StoreRef)+" "+shellQuote(tag))
		// Not killed by Ctrl-C halfway: a job Slurm took is cancelled
		// with the rest.
		cmd := exec.Command("sbatch", args...)
		cmd.Env = jobEnv(os.Environ())
		out, err := cmd.CombinedOutput()
		if err != nil {
			msg := strings.TrimSpace(string(out))
			if msg == "" {
				msg = err.Error()
			}
			return fmt.Errorf("step %s.%s: sbatch: %s", spec.Pipeline, spec.Step, msg)
		}
		id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";")
		j := &job{n: n, id: id, state: "PENDING"}
		mu.Lock()
		jobs = append(jobs, j)
		byNode[n] = j
		mu.Unlock()
		a.progress(n, "%s %s submitted as job %s", n.planned.Action.Symbol(), stepLabel(n), id)
		return nil
	}
	left := order
	for len(left) > 0 {
		var wave, rest []*node
		for _, n := range left {
			ready := true
			for _, up := range n.step.Upstream() {
				if u := n.pr.nodes[up]; u.planned.Runs() && byNode[u] == nil {
					ready = false
				}
			}
			if ready {
				wave = append(wave, n)
			} else {
				rest = append(rest, n)
			}
		}
		errs := make([]error, len(wave))
		var g errgroup.Group
		g.SetLimit(submitConcurrency)
		for i, n := range wave {
			g.Go(func() error {
				errs[i] = submit(n)
				return nil
			})
		}
		g.Wait()
		if err := errors.Join(errs...); err != nil {
			cancelAll()
			return err
		}
		if ctx.Err() != nil {
			// Ctrl-C while submitting: cancel what was submitted; the
			// run is recorded as cancelled below.
			cancelAll()
			break
		}
		left = rest
	}
	for _, n := range order {
		if byNode[n] == nil {
			n.res = &state.StepResult{Status: state.StatusCancelled, Reason: "apply cancelled before the step was submitted"}
		}
	}
	if len(jobs) > 0 {
		a.progress(nil, "  submitted %d jobs in %s", len(jobs), time.Since(submitted).Round(time.Millisecond))
	}
	if a.env.Detach && ctx.Err() == nil {
		// Collected later, by zen runs watch or the next apply.
		for n, j := range byNode {
			n.res = &state.StepResult{Status: state.StatusSubmitted, Job: j.id}
		}
		return nil
	}
	return a.finishSlurm(ctx, jobs)
}

// finishSlurm waits for the submitted jobs and collects their results.
func (a *applier) finishSlurm(ctx context.Context, jobs []*job) error {
	if err := a.waitJobs(ctx, jobs); err != nil {
		return err
	}
	cancelled := ctx.Err() != nil
	if cancelled && a.keepJobs {
		return ErrStopped
	}
	byNode := map[*node]*job{}
	for _, j := range jobs {
		byNode[j.n] = j
	}
	var overhead time.Duration
	measured := 0
	for _, n := range a.nodes {
		j := byNode[n]
		if j == nil {
			continue
		}
		if d, ok := a.collect(context.WithoutCancel(ctx), n, j, cancelled); ok {
			overhead += d
			measured++
		}
	}
	if measured > 0 {
		a.progress(nil, "  step runner: %s a step beyond the steps themselves (mean of %d)", (overhead / time.Duration(measured)).Round(time.Millisecond), measured)
	}
	return nil
}

// waitJobs polls squeue until every job has ended, printing each change;
// Ctrl-C cancels them all with scancel.
func (a *applier) waitJobs(ctx context.Context, jobs []*job) error {
	if len(jobs) == 0 {
		return nil
	}
	ids := make([]string, len(jobs))
	byID := map[string]*job{}
	for i, j := range jobs {
		ids[i] = j.id
		byID[j.id] = j
	}
	for {
		if ctx.Err() != nil {
			if !a.keepJobs {
				scancel(ids)
			}
			return nil
		}
		states, err := squeueRetrying(ctx, ids)
		if ctx.Err() != nil {
			continue // cancels the jobs, above
		}
		if err != nil {
			if a.keepJobs {
				return fmt.Errorf("%w (the run's jobs were left as they are)", err)
			}
			scancel(ids)
			return fmt.Errorf("%w (the run's jobs were cancelled)", err)
		}
		left := 0
		var orphans []string
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
			j.exit, j.signal = st.exit, st.signal
			if st.comment != "" {
				j.comment = st.comment
			}
			if st.state != j.state || st.node != j.node && st.node != "" {
				j.state, j.node = st.state, cmpOr(st.node, j.node)
				switch j.state {
				case "RUNNING":
					a.progress(j.n, "~ %s running on %s (job %s)", stepLabel(j.n), j.node, j.id)
				case "PENDING":
				default:
					a.progress(j.n, "  %s job %s %s", stepLabel(j.n), j.id, strings.ToLower(j.state))
				}
			}
			if !terminal(j.state) {
				left++
			}
		}
		scancel(orphans)
		if left == 0 {
			return nil
		}
		_ = wait.Sleep(ctx, slurmPoll) // when ctx ends, the loop's top cancels the jobs
	}
}

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

// collect fills in a submitted step's result: the one its runner stored,
// or, when the job ended without one, what Slurm says happened.
//
// It returns the step runner's overhead on the node: its time beyond the
// step's own, when the step ran.
func (a *applier) collect(ctx context.Context, n *node, j *job, cancelled bool) (overhead time.Duration, measured bool) {
	var rr remoteResult
	err := getJSON(ctx, a.env.Store, resultTag(n.pr.run.ID, n.pr.pipeline.Name, n.step.Name), &rr)
	switch {
	case err == nil && rr.Result != nil:
		n.res = rr.Result
		n.res.Node = cmpOr(rr.Node, j.node)
		if r := n.res; r.Started != nil && r.Finished != nil && !rr.Started.IsZero() {
			overhead, measured = rr.Finished.Sub(rr.Started)-r.Finished.Sub(*r.Started), true
		}
	default:
		n.res = &state.StepResult{Status: state.StatusFailed, Node: j.node}
		var failed []string
		for _, up := range n.step.Upstream() {
			if u := n.pr.nodes[up]; u.res != nil && u.res.Status != state.StatusSucceeded && u.res.Status != state.StatusCached {
				failed = append(failed, up)
			}
		}
		switch {
		case len(failed) > 0:
			n.res.Status, n.res.Reason = state.StatusSkipped, "upstream step "+strings.Join(failed, ", ")+" did not succeed"
		case cancelled || j.state == "CANCELLED":
			n.res.Status, n.res.Reason = state.StatusCancelled, fmt.Sprintf("job %s cancelled", j.id)
		case j.state == "TIMEOUT":
			n.res.Reason = fmt.Sprintf("job %s killed by Slurm on %s: time limit reached%s", j.id, j.node, limit(n.step.Resources, "time"))
		case j.state == "OUT_OF_MEMORY":
			n.res.Reason = fmt.Sprintf("job %s killed by Slurm on %s: out of memory%s", j.id, j.node, limit(n.step.Resources, "memory"))
		case j.signal == 9 && limit(n.step.Resources, "memory") != "":
			// Where Slurm enforces memory without cgroups (OverMemoryKill),
			// a job over its limit is killed and merely FAILED.
			n.res.Reason = fmt.Sprintf("job %s killed on %s (signal KILL): over its memory limit, most likely%s", j.id, cmpOr(j.node, "its node"), limit(n.step.Resources, "memory"))
		case j.signal != 0:
			n.res.Reason = fmt.Sprintf("job %s on %s ended by signal %d before zen reported a result", j.id, cmpOr(j.node, "its node"), j.signal)
		case j.comment != "":
			n.res.Reason = fmt.Sprintf("job %s on %s: %s", j.id, cmpOr(j.node, "its node"), j.comment)
		case j.exit == 127 || j.exit == 126:
			n.res.Reason = fmt.Sprintf("job %s ended %s on %s before zen reported a result: is zen on the nodes at the stack's orchestrator.zen path?", j.id, strings.ToLower(j.state), cmpOr(j.node, "its node"))
		default:
			n.res.Reason = fmt.Sprintf("job %s ended %s on %s (exit %d) without a result: zen step-run could not store one (the node's slurmd log has its output)", j.id, strings.ToLower(j.state), cmpOr(j.node, "its node"), j.exit)
		}
	}
	n.res.Job = j.id
	// The key, now that the upstream outputs are known.
	if n.fp != nil && (n.res.Status == state.StatusSucceeded || n.res.Status == state.StatusFailed) {
		if n.fp.Inputs == nil {
			n.fp.Inputs = map[string]string{}
		}
		maps.Copy(n.fp.Inputs, n.upstreamDigests())
		n.res.CacheKey = plan.Key(n.fp)
	} else {
		n.fp = nil
	}
	// The node signs nothing (the key stays here): sign what it pushed.
	if n.res.Status == state.StatusSucceeded {
		for name, o := range n.res.Outputs {
			if err := a.signArtifact(ctx, o.Digest, n.build(name)); err != nil {
				n.res.Status, n.res.Reason = state.StatusFailed, fmt.Sprintf("sign output %s: %v", name, err)
				break
			}
		}
	}
	if n.res.Log != nil {
		_ = a.signArtifact(ctx, n.res.Log.Digest, n.build("log"))
	}
	switch n.res.Status {
	case state.StatusSucceeded:
		a.progress(n, "✓ %s succeeded on %s (job %s)", stepLabel(n), n.res.Node, j.id)
	case state.StatusSkipped:
		a.progress(n, "- %s not run: %s", stepLabel(n), n.res.Reason)
	default:
		a.progress(n, "✗ %s %s: %s", stepLabel(n), n.res.Status, Redact(n.res.Reason, a.secrets))
	}
	return overhead, measured
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

// Sets gives a plan's overrides back as --set arguments, PATH=VALUE, for
// schema.ParseOverride.
func Sets(overrides []plan.Override) ([]string, error) {
	var sets []string
	for _, o := range overrides {
		v, err := json.Marshal(o.Value)
		if err != nil {
			return nil, err
		}
		sets = append(sets, o.Path+"="+string(v))
	}
	return sets, nil
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

// jobEnv is the environment sbatch passes on to the job: zen's, without
// what holds secrets (Slurm keeps a job's environment, and the node is
// another machine).
func jobEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		up := strings.ToUpper(name)
		if strings.HasPrefix(up, "ZEN_SECRET") || strings.HasPrefix(up, "COSIGN_") ||
			strings.Contains(up, "PASSWORD") || strings.Contains(up, "TOKEN") || strings.Contains(up, "SECRET") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
