package apply

import (
	"context"
	"errors"

	"github.com/zen-dev/zen/state"
)

// local runs each step as processes of this zen (see runStep), on this
// machine: a step is submitted once the steps it reads from have
// succeeded, and reads their outputs where they were written.
type local struct{ a *applier }

// localJob is a step running in this process.
type localJob struct {
	cancel context.CancelFunc
	done   chan struct{}
	res    *state.StepResult
}

func (*localJob) ID() string { return "" }

func (*local) Traits() Traits { return Traits{} }

func (*local) Start(context.Context, []*Task) error { return nil }

func (l *local) Submit(ctx context.Context, t *Task) (Job, error) {
	ctx, cancel := context.WithCancel(ctx)
	j := &localJob{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(j.done)
		defer cancel()
		j.res = l.a.runStep(ctx, t.n, t.Key)
	}()
	return j, nil
}

func (*local) Reattach(*Task, string) (Job, error) {
	return nil, errors.New("a step run by this zen cannot be reattached")
}

func (*local) Wait(ctx context.Context, j Job) error {
	select {
	case <-j.(*localJob).done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Cancel ends the step's processes (SIGTERM, then SIGKILL; see process).
func (*local) Cancel(jobs ...Job) {
	for _, j := range jobs {
		j.(*localJob).cancel()
	}
}

// Collect waits for the step's log and outputs to be stored, which a
// cancelled step does too.
func (*local) Collect(_ context.Context, j Job) *state.StepResult {
	lj := j.(*localJob)
	<-lj.done
	return lj.res
}

func (*local) Close() {}
