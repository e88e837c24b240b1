package zen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/zen-dev/zen/apply"
)

// WatchOptions say which detached runs Watch collects, and how.
type WatchOptions struct {
	// Run is a run id, or a prefix of one, whose submission to collect;
	// "" collects every submission.
	Run string
	// LockTimeout is how long to wait for another apply in the clone to
	// finish; 0 refuses at once.
	LockTimeout time.Duration
	// Log receives progress: the wait for the lock, notes on the state's
	// pull, the jobs' progress. Nil discards it.
	Log io.Writer
	// Recorded, if set, is called with each submission's result as it
	// is recorded (or tried), in order.
	Recorded func(*apply.Result)
}

// Watched is what Watch did.
type Watched struct {
	// Pending counts the submissions it watched; 0 when none was left to
	// collect.
	Pending int
	// Remote is the git remote the state ref was pulled from, "" for
	// none; Pushed says it was pushed back there.
	Remote string
	Pushed bool
}

// Watch follows the runs that detached applies left on a Slurm cluster:
// with the clone's apply lock held and the state ref pulled from its
// remote, it waits for each submission's jobs, collects and records its
// runs as an attached apply would, and pushes the state ref back. An
// interrupted wait (ctx) leaves the jobs running and returns an error
// that wraps apply.ErrStopped; other submissions' errors are joined.
func (p *Project) Watch(ctx context.Context, opts WatchOptions) (*Watched, error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	lock, err := p.LockApply(ctx, "zen runs watch", opts.LockTimeout, log)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	w := &Watched{Remote: p.StateRemote()}
	var remoteHead string
	if w.Remote != "" {
		sync, notes, err := p.Pull(ctx, w.Remote)
		if err != nil {
			return nil, fmt.Errorf("%w (ZEN_REMOTE=none watches against the local state alone)", err)
		}
		remoteHead = sync.RemoteHead
		for _, n := range notes {
			fmt.Fprintln(log, "zen: "+n)
		}
	}
	todo, err := p.Submitted(opts.Run)
	if err != nil {
		return nil, err
	}
	w.Pending = len(todo)
	var errs []error
	recorded := false
	for _, sub := range todo {
		res, err := p.Collect(ctx, sub, log)
		if errors.Is(err, apply.ErrStopped) {
			return w, fmt.Errorf("%w: zen runs watch %s again to record run %s", err, sub.Runs[0], sub.Runs[0])
		}
		if res != nil {
			if opts.Recorded != nil {
				opts.Recorded(res)
			}
			recorded = recorded || res.StateCommit != ""
		}
		errs = append(errs, err)
	}
	if recorded && w.Remote != "" {
		if err := p.Push(ctx, w.Remote, remoteHead); err != nil {
			errs = append(errs, err)
		} else {
			w.Pushed = true
		}
	}
	return w, errors.Join(errs...)
}
