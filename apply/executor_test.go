package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// scripted is an orchestrator whose steps end as a table says, in this
// process: the executor's test bed, and what a new orchestrator is (one
// type with the Orchestrator methods).
type scripted struct {
	traits Traits
	// ends says how a step ends: "failed", "hang" (until cancelled);
	// any other step succeeds.
	ends map[string]string

	mu                  sync.Mutex
	submitted           []string            // step names, in order
	after               map[string][]string // step → the job ids it was submitted after
	cancelled           []string            // job ids
	running, maxRunning int
	started             chan string // each step as it starts, if not nil
	submits             chan string // each step as it is submitted, if not nil
}

type scriptedJob struct {
	id, step  string
	done      chan struct{}
	cancel    chan struct{}
	cancelled sync.Once
	res       *state.StepResult
}

func (j *scriptedJob) ID() string { return j.id }

func (o *scripted) Traits() Traits                       { return o.traits }
func (o *scripted) Start(context.Context, []*Task) error { return nil }
func (o *scripted) Close()                               {}

func (o *scripted) Submit(_ context.Context, t *Task) (Job, error) {
	o.mu.Lock()
	o.submitted = append(o.submitted, t.Step.Name)
	j := &scriptedJob{id: strconv.Itoa(len(o.submitted)), step: t.Step.Name, done: make(chan struct{}), cancel: make(chan struct{})}
	for _, a := range t.After {
		o.after[t.Step.Name] = append(o.after[t.Step.Name], a.ID())
	}
	o.mu.Unlock()
	go o.run(t, j)
	if o.submits != nil {
		o.submits <- t.Step.Name
	}
	return j, nil
}

func (o *scripted) Reattach(t *Task, id string) (Job, error) {
	j := &scriptedJob{id: id, step: t.Step.Name, done: make(chan struct{}), cancel: make(chan struct{})}
	go o.run(t, j)
	return j, nil
}

// run ends the job as the table says; a chained job starts once the jobs
// it was submitted after succeeded, and is dropped when one did not.
func (o *scripted) run(t *Task, j *scriptedJob) {
	defer close(j.done)
	for _, a := range t.After {
		a := a.(*scriptedJob)
		select {
		case <-a.done:
		case <-j.cancel:
			j.res = &state.StepResult{Status: state.StatusCancelled, Reason: "cancelled"}
			return
		}
		if a.res.Status != state.StatusSucceeded {
			j.res = &state.StepResult{Status: state.StatusCancelled, Reason: "dependency never satisfied"}
			return
		}
	}
	o.mu.Lock()
	o.running++
	o.maxRunning = max(o.maxRunning, o.running)
	o.mu.Unlock()
	if o.started != nil {
		o.started <- t.Step.Name
	}
	defer func() {
		o.mu.Lock()
		o.running--
		o.mu.Unlock()
	}()
	switch o.ends[t.Step.Name] {
	case "failed":
		j.res = &state.StepResult{Status: state.StatusFailed, Reason: "exited with code 3"}
	case "hang":
		<-j.cancel
		j.res = &state.StepResult{Status: state.StatusCancelled, Reason: "apply cancelled while the step ran"}
	default:
		j.res = &state.StepResult{Status: state.StatusSucceeded, Outputs: map[string]state.Artifact{}}
		for _, name := range t.Step.OutputNames() {
			sum := sha256.Sum256([]byte(t.Step.Name + "." + name))
			j.res.Outputs[name] = state.Artifact{Digest: "sha256:" + hex.EncodeToString(sum[:]), Type: "file"}
		}
	}
}

func (o *scripted) Wait(ctx context.Context, j Job) error {
	select {
	case <-j.(*scriptedJob).done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (o *scripted) Cancel(jobs ...Job) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, j := range jobs {
		j := j.(*scriptedJob)
		o.cancelled = append(o.cancelled, j.id)
		j.cancelled.Do(func() { close(j.cancel) })
	}
}

func (o *scripted) Collect(_ context.Context, j Job) *state.StepResult {
	<-j.(*scriptedJob).done
	return j.(*scriptedJob).res
}

// diamond: b and c read a, d reads b and c.
const diamondCUE = `package zen

pipelines: p: steps: {
	a: {run: ["true"], outputs: o: type: "file"}
	b: {run: ["true"], inputs: i: steps.a.outputs.o, outputs: o: type: "file"}
	c: {run: ["true"], inputs: i: steps.a.outputs.o, outputs: o: type: "file"}
	d: {run: ["true"], inputs: {b: steps.b.outputs.o, c: steps.c.outputs.o}, outputs: o: type: "file"}
}
`

// noSources: the steps read nothing from the repository.
type noSources struct{}

func (noSources) File(string) (string, error)                  { return "", errors.New("no files") }
func (noSources) Dir(string) (string, error)                   { return "", errors.New("no folders") }
func (noSources) Code(*schema.Step) (map[string]string, error) { return nil, nil }
func (noSources) Executable(name string) (string, error)       { return "program:" + name, nil }

// testApplier readies an apply of every step of diamondCUE on o, with a
// journal in a real git clone.
func testApplier(t *testing.T, o *scripted, jobs int) (*applier, *state.Store) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "zen.cue"), []byte(diamondCUE), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := schema.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	store, err := registry.OpenLayout(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("git", "init", "-q", dir).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	st, err := state.Open(dir, "refs/zen/state")
	if err != nil {
		t.Fatal(err)
	}
	pp := &plan.Pipeline{Name: "p"}
	for _, name := range []string{"a", "b", "c", "d"} {
		pp.Steps = append(pp.Steps, &plan.Step{Name: name, Action: plan.Run, Fingerprint: &state.Fingerprint{}})
	}
	env := &Env{Config: cfg, Stack: &schema.Stack{Name: "test", Orchestrator: schema.Component{Flavor: "test"}}, Store: store, Sources: noSources{}, Records: cacheRecords{}, Stream: &testWriter{t: t}, Secret: LookupSecret, State: st}
	a := &applier{env: env, plan: &plan.Plan{Pipelines: []*plan.Pipeline{pp}}, jobs: jobs, orch: o, stream: env.Stream, pulled: map[string]*pull{}}
	if err := a.prepare(); err != nil {
		t.Fatal(err)
	}
	heads := []*state.Run{a.runs[0].run}
	if a.journal, err = st.OpenJournal(heads[0].ID, heads); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.journal.Close)
	return a, st
}

// cacheRecords is a state ref's cache entries, by key.
type cacheRecords map[string]*state.Cache

func (r cacheRecords) Cache(key string) (*state.Cache, bool, error) {
	c, ok := r[key]
	return c, ok, nil
}
func (cacheRecords) Pipeline(string) (*state.Pipeline, bool, error) { return nil, false, nil }
func (cacheRecords) Stages(string) (*state.Stages, bool, error)     { return nil, false, nil }
func (cacheRecords) ModelVersion(string, string) (*state.ModelVersion, bool, error) {
	return nil, false, nil
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s", b)
	return len(b), nil
}

func statuses(a *applier) map[string]string {
	out := map[string]string{}
	for _, n := range a.nodes {
		out[n.step.Name] = string(n.res.Status)
	}
	return out
}

// journaled lists the steps the apply's journal holds.
func journaled(t *testing.T, a *applier, st *state.Store) []string {
	t.Helper()
	a.journal.Close()
	left, err := st.LeftJournals()
	if err != nil || len(left) != 1 {
		t.Fatalf("journals: %v, %v", left, err)
	}
	var steps []string
	for _, r := range left[0].Runs {
		steps = append(steps, slices.Collect(maps.Keys(r.Steps))...)
	}
	slices.Sort(steps)
	return steps
}

// On an orchestrator that does not chain, a step is submitted once the
// steps it reads from succeeded, at most -j at once; a failure skips
// what comes after it, unsubmitted; each success is journaled as it is
// collected, with its key.
func TestExecuteInOrder(t *testing.T) {
	o := &scripted{ends: map[string]string{"c": "failed"}, after: map[string][]string{}}
	a, st := testApplier(t, o, 1)
	if err := a.execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"a": "succeeded", "b": "succeeded", "c": "failed", "d": "skipped"}; !maps.Equal(statuses(a), want) {
		t.Errorf("statuses %v, want %v", statuses(a), want)
	}
	if o.submitted[0] != "a" || len(o.submitted) != 3 || slices.Contains(o.submitted, "d") {
		t.Errorf("submitted %v, want a first, then b and c", o.submitted)
	}
	if o.maxRunning != 1 {
		t.Errorf("%d steps ran at once with -j 1", o.maxRunning)
	}
	for _, n := range a.nodes[:3] {
		if n.res.CacheKey == "" || n.res.Job == "" {
			t.Errorf("step %s: key %q, job %q", n.step.Name, n.res.CacheKey, n.res.Job)
		}
	}
	if got := journaled(t, a, st); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("journaled %v, want a and b", got)
	}
}

// On an orchestrator that chains, every step is submitted at once after
// the jobs it reads from; a step after a failed one is skipped with its
// job cancelled, and a key is computed as its step is collected, from
// the outputs upstream.
func TestExecuteChained(t *testing.T) {
	o := &scripted{traits: Traits{Chains: true}, ends: map[string]string{"c": "failed"}, after: map[string][]string{}}
	a, st := testApplier(t, o, 1)
	if err := a.execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"a": "succeeded", "b": "succeeded", "c": "failed", "d": "skipped"}; !maps.Equal(statuses(a), want) {
		t.Errorf("statuses %v, want %v", statuses(a), want)
	}
	if len(o.submitted) != 4 {
		t.Errorf("submitted %v, want all four", o.submitted)
	}
	jobOf := map[string]string{}
	for _, n := range a.nodes {
		jobOf[n.step.Name] = n.res.Job
	}
	if got := o.after["d"]; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values([]string{jobOf["b"], jobOf["c"]}))) {
		t.Errorf("d submitted after jobs %v, want b's and c's (%v)", got, jobOf)
	}
	if !slices.Contains(o.cancelled, jobOf["d"]) {
		t.Errorf("d's job %s was not cancelled (cancelled: %v)", jobOf["d"], o.cancelled)
	}
	b := a.runs[0].nodes["b"]
	fp, err := plan.Fingerprint(b.step, noSources{}, map[string]string{"i": a.runs[0].nodes["a"].res.Outputs["o"].Digest})
	if err != nil {
		t.Fatal(err)
	}
	if b.res.CacheKey != plan.Key(fp) {
		t.Errorf("b's key %s, want %s (with a's output)", b.res.CacheKey, plan.Key(fp))
	}
	if got := journaled(t, a, st); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("journaled %v, want a and b", got)
	}
}

// Cancelled, the executor cancels the running step and skips the rest;
// collecting a detached run (keepJobs), it leaves the jobs alone and
// says it stopped.
func TestExecuteCancel(t *testing.T) {
	for _, tt := range []struct {
		chains, keepJobs bool
	}{{false, false}, {true, false}, {true, true}} {
		t.Run(fmt.Sprintf("chains=%v,keep=%v", tt.chains, tt.keepJobs), func(t *testing.T) {
			o := &scripted{traits: Traits{Chains: tt.chains}, ends: map[string]string{"a": "hang"}, after: map[string][]string{}, started: make(chan string, 4), submits: make(chan string, 4)}
			a, _ := testApplier(t, o, 4)
			a.keepJobs = tt.keepJobs
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			if tt.keepJobs {
				// As Resume does: the jobs a detached apply submitted.
				for i, n := range a.nodes {
					n.job, _ = o.Reattach(a.task(n), strconv.Itoa(i+1))
				}
				go func() { done <- a.awaitAll(ctx) }()
			} else {
				go func() { done <- a.execute(ctx) }()
			}
			for s := range o.started {
				if s == "a" {
					break
				}
			}
			if tt.chains && !tt.keepJobs {
				// Once all are submitted: Ctrl-C while submitting
				// cancels those not submitted yet.
				for range 4 {
					<-o.submits
				}
			}
			cancel()
			err := <-done
			if tt.keepJobs {
				if !errors.Is(err, ErrStopped) || len(o.cancelled) != 0 {
					t.Fatalf("err %v, cancelled %v: want ErrStopped and the jobs left alone", err, o.cancelled)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st := statuses(a); st["a"] != "cancelled" || st["b"] != "skipped" || st["d"] != "skipped" {
				t.Errorf("statuses %v, want a cancelled, the rest skipped", st)
			}
			if !slices.Contains(o.cancelled, a.runs[0].nodes["a"].res.Job) {
				t.Errorf("a's job was not cancelled: %v", o.cancelled)
			}
		})
	}
}

// A step whose upstream step ran and made what it had before is a cache
// hit, not submitted (the early cut-off), on an orchestrator that takes a
// step once the steps it reads from have their results.
func TestExecuteCutOff(t *testing.T) {
	for _, chains := range []bool{false, true} {
		t.Run(fmt.Sprintf("chains=%v", chains), func(t *testing.T) {
			o := &scripted{traits: Traits{Chains: chains}, after: map[string][]string{}}
			a, _ := testApplier(t, o, 4)
			// b's entry: its key with a's output as this apply makes it.
			sum := sha256.Sum256([]byte("a.o"))
			b := a.runs[0].nodes["b"]
			fp, err := plan.Fingerprint(b.step, noSources{}, map[string]string{"i": "sha256:" + hex.EncodeToString(sum[:])})
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(t.TempDir(), "o")
			if err := os.WriteFile(f, []byte("b before"), 0o644); err != nil {
				t.Fatal(err)
			}
			d, err := a.env.Store.Push(context.Background(), f, "file")
			if err != nil {
				t.Fatal(err)
			}
			a.env.Records = cacheRecords{plan.Key(fp): {Key: plan.Key(fp), RunID: "before", Outputs: map[string]state.Artifact{"o": {Digest: d.Digest}}}}
			if err := a.execute(context.Background()); err != nil {
				t.Fatal(err)
			}
			switch {
			case chains && (b.res.Status != state.StatusSucceeded || !slices.Contains(o.submitted, "b")):
				t.Errorf("b %s, submitted %v: a chaining orchestrator has b before a's outputs are known", b.res.Status, o.submitted)
			case !chains && (b.res.Status != state.StatusCached || b.res.CachedFrom != "before" || slices.Contains(o.submitted, "b")):
				t.Errorf("b %s from %q, submitted %v: want cached from run before, not submitted", b.res.Status, b.res.CachedFrom, o.submitted)
			}
		})
	}
}
