package apply

import (
	"context"

	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// An Orchestrator runs an apply's steps somewhere: as processes of this
// zen (local.go), as jobs of a Slurm cluster (slurm.go). It only runs
// them. The executor (executor.go) decides when each step is submitted,
// and does everything else once for every orchestrator: the early cache
// cut-off, cache keys, signing, the journal, progress, the records.
//
// An orchestrator is made for one apply (see newOrchestrator); its
// methods are called from many goroutines at once. A new orchestrator
// (containers, Kubernetes) is one file: a type with these methods and a
// case in newOrchestrator.
type Orchestrator interface {
	// Traits says how the executor drives the orchestrator.
	Traits() Traits
	// Start readies the steps that run, before the first is submitted:
	// for instance, it stores what they run from where they can read it.
	// An error ends the apply before anything ran.
	Start(ctx context.Context, tasks []*Task) error
	// Submit hands a step over and returns without waiting for it. An
	// error means the step was not taken.
	Submit(ctx context.Context, t *Task) (Job, error)
	// Reattach gives back the job that a detached apply submitted for t
	// as id, for a later zen to wait for and collect.
	Reattach(t *Task, id string) (Job, error)
	// Wait returns once j has ended, or with ctx.Err() once ctx ends.
	// Another error is the orchestrator's own: it cannot tell how its
	// jobs are doing, and the apply stops without recording.
	Wait(ctx context.Context, j Job) error
	// Cancel stops the jobs, as far as it can, without waiting for them.
	Cancel(jobs ...Job)
	// Collect returns what became of a job that ended or was cancelled:
	// the step's result, its outputs and log stored (not signed). It
	// never fails: a job that left no result is reported, as failed or
	// cancelled, from what the orchestrator knows.
	Collect(ctx context.Context, j Job) *state.StepResult
	// Close is called once every job is collected.
	Close()
}

// Traits says how the executor drives an orchestrator.
type Traits struct {
	// Chains: a step may be submitted before the steps it reads from have
	// ended, after their jobs (Task.After). The orchestrator starts it
	// once they succeeded and drops it when one did not. The executor
	// then submits every step at once; the scheduler decides how many run
	// together (-j does not apply), and the early cache cut-off does not
	// apply either, since a step is submitted before its upstream outputs
	// are known.
	Chains bool
	// Detaches: jobs outlive this zen. An apply may return once they are
	// submitted (--detach), and a later zen reattaches to them (Resume).
	Detaches bool
}

// A Job is a step submitted to an orchestrator.
type Job interface {
	// ID is the scheduler's name for the job, recorded with the step's
	// result; "" for a process of this zen.
	ID() string
}

// A Task is a step to run, as the executor hands it to an orchestrator.
type Task struct {
	// Run is the run the step belongs to (its ID and source commit).
	Run      *state.Run
	Pipeline *schema.Pipeline
	Step     *schema.Step
	// Action is why it runs (plan.Run, or a re-run).
	Action plan.Action
	// Env is the step's declared environment, NAME=VALUE, secrets
	// resolved; stepEnv says what it inherits besides.
	Env []string
	// Key is the step's cache key when known at submission: not on a
	// chaining orchestrator, where upstream outputs are not known yet.
	Key string
	// After lists the jobs of the steps it reads from that were submitted
	// in this apply, on a chaining orchestrator.
	After []Job

	n *node
}

// newOrchestrator makes the orchestrator of the apply's stack.
func newOrchestrator(a *applier) Orchestrator {
	// Any other flavor runs here, as it always has.
	if a.env.Stack.Orchestrator.Flavor == "slurm" {
		return newSlurm(a)
	}
	return &local{a: a}
}
