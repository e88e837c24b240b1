package zen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zen-dev/zen/internal/wait"
	"github.com/zen-dev/zen/state"
)

// StateRemote is the git remote the state ref is shared through:
// Options.Remote, else the git config zen.remote, else origin if the
// repository has one; "" when there is none (Remote "none" turns sharing
// off).
func (p *Project) StateRemote() string {
	name := p.opts.Remote
	if name == "" {
		if cfg, err := p.ws.Repo.Config(); err == nil {
			name = cfg.Raw.Section("zen").Option("remote")
		}
	}
	explicit := name != ""
	if name == "" {
		name = "origin"
	}
	if name == "none" {
		return ""
	}
	if _, err := p.ws.Repo.Remote(name); err != nil {
		if explicit {
			return name // named on purpose: let the fetch say what is wrong
		}
		return ""
	}
	return name
}

// SharingRemote is StateRemote, or an error saying why the state ref is
// not shared: Options.Remote is "none", or there is no remote.
func (p *Project) SharingRemote() (string, error) {
	r := p.StateRemote()
	if r == "" && p.opts.Remote == "none" {
		return "", errors.New("ZEN_REMOTE=none keeps the state local: unset it, or set it to the name of a git remote, to share the state")
	}
	if r == "" {
		return "", errors.New("no git remote to share the state through: add one (git remote add origin URL), or set ZEN_REMOTE to a remote's name")
	}
	return r, nil
}

// PushState brings the state ref up to the remote's (see Pull) and pushes
// it (see Push), and returns the commit it is at then, "" for none.
func (p *Project) PushState(ctx context.Context, remote string) (string, error) {
	sync, _, err := p.Pull(ctx, remote)
	if err != nil {
		return "", err
	}
	if err := p.Push(ctx, remote, sync.RemoteHead); err != nil {
		return "", err
	}
	head, err := p.state.Head()
	if err != nil {
		return "", err
	}
	return head.Commit(), nil
}

// Pull brings the state ref up to the remote's. It returns the remote's
// commit, for the push after an apply, and notes for people.
func (p *Project) Pull(ctx context.Context, remote string) (*state.Sync, []string, error) {
	sync, err := p.state.Pull(ctx, remote)
	if err != nil {
		return nil, nil, err
	}
	var notes []string
	if sync.Replayed > 0 {
		notes = append(notes, fmt.Sprintf("the state on %s moved: %d local state commits were written again on top of it", remote, sync.Replayed))
	}
	if len(sync.Dropped) > 0 {
		notes = append(notes, fmt.Sprintf("%s changed these records meanwhile; its version is kept: %s", remote, strings.Join(sync.Dropped, ", ")))
	}
	if sync.Ahead > 0 {
		notes = append(notes, fmt.Sprintf("%d local state commits are not on %s yet: zen apply or zen state push sends them", sync.Ahead, remote))
	}
	return sync, notes, nil
}

// pushRetry is the first pause before pushing the state again after a
// network error (then 2×).
const pushRetry = time.Second

// Push pushes the state ref to the remote, expected being the remote's
// commit when it was last pulled. When another apply pushed first, it
// pulls and replays. A record the other apply changed too (the same
// pipeline's baseline, the same model's stage) is theirs to keep, and the
// error then says to plan again.
func (p *Project) Push(ctx context.Context, remote, expected string) error {
	return push(ctx, p.state, remote, expected, pushRetry, wait.Sleep)
}

// push is Push of st's ref (the state ref, or a preview's), with its
// pause between attempts given: tests see the pauses through pause.
func push(ctx context.Context, st *state.Store, remote, expected string, retry time.Duration, pause func(context.Context, time.Duration) error) error {
	for attempt := range 3 {
		err := st.Push(ctx, remote, expected)
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("%w; stopped: %w", err, ctx.Err())
		}
		if errors.Is(err, state.ErrRemote) && attempt < 2 {
			// A network hiccup: a CI job's clone is thrown away, with
			// the records only it holds.
			if werr := pause(ctx, time.Duration(attempt+1)*retry); werr != nil {
				return fmt.Errorf("%w; stopped before pushing again: %w", err, werr)
			}
			continue
		}
		if !errors.Is(err, state.ErrStateMoved) {
			return err
		}
		sync, err := st.Pull(ctx, remote)
		if err != nil {
			return err
		}
		if len(sync.Dropped) > 0 {
			if perr := st.Push(ctx, remote, sync.RemoteHead); perr != nil {
				return perr
			}
			return fmt.Errorf("another apply pushed to %s first and changed %s: %w (the runs were recorded and pushed; their versions of those records are kept)",
				remote, strings.Join(sync.Dropped, ", "), state.ErrStateMoved)
		}
		expected = sync.RemoteHead
	}
	return fmt.Errorf("the state on %s keeps moving: %w", remote, state.ErrStateMoved)
}
