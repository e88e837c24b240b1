package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zen-dev/zen/internal/wait"
)

// ApplyLock is held by the zen command that records runs in a clone
// (apply, runs watch) from planning to pushing, so that two of them never
// interleave. It is an flock on zen-apply.lock in the common git dir: the
// kernel releases it when its process ends, however it ends, so a crashed
// apply leaves no stale lock behind.
type ApplyLock struct {
	f *os.File
}

// ErrApplyLocked is wrapped by LockApply's error when another process holds
// the lock for longer than the timeout.
var ErrApplyLocked = errors.New("another zen apply is running in this clone")

// applyLockPoll is how often a waiting LockApply tries again; a variable
// so that tests can make it small.
var applyLockPoll = 100 * time.Millisecond

// LockApply takes the clone's apply lock for what ("zen apply"), waiting
// up to timeout for another holder (0: not at all). When it has to wait,
// it calls waiting, if not nil, once with who holds the lock. It stops
// waiting when ctx ends, with an error that wraps ctx.Err().
func (s *Store) LockApply(ctx context.Context, what string, timeout time.Duration, waiting func(holder string)) (*ApplyLock, error) {
	p := filepath.Join(s.commonDir, "zen-apply.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("apply lock: %w", err)
	}
	deadline := time.Now().Add(timeout)
	first := true
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("apply lock %s: %w", p, err)
		}
		if time.Now().After(deadline) {
			holder := applyLockHolder(ctx, p)
			f.Close()
			hint := "wait for it to finish, or pass --lock-timeout to wait"
			if timeout > 0 {
				hint = fmt.Sprintf("waited %s; try again once it has finished", timeout)
			}
			return nil, fmt.Errorf("%w: %s holds %s (%s)", ErrApplyLocked, holder, p, hint)
		}
		if first && waiting != nil {
			waiting(applyLockHolder(ctx, p))
		}
		first = false
		if err := wait.Sleep(ctx, applyLockPoll); err != nil {
			f.Close()
			return nil, fmt.Errorf("stopped waiting for %s to release %s: %w", applyLockHolder(ctx, p), p, err)
		}
	}
	// Who holds it, for the message another zen gives.
	info := fmt.Sprintf("%s (pid %d, since %s)", what, os.Getpid(), time.Now().Format("15:04:05"))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(info+"\n"), 0)
	}
	return &ApplyLock{f: f}, nil
}

// Release lets the next apply in. It is safe to call more than once.
func (l *ApplyLock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	l.f.Close()
	l.f = nil
}

// applyLockHolder reads who holds the lock at p from the file: the holder
// writes it right after it takes the lock, so it waits a little for it.
func applyLockHolder(ctx context.Context, p string) string {
	for range 20 {
		if b, err := os.ReadFile(p); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return strings.TrimSpace(string(b))
		}
		if wait.Sleep(ctx, 10*time.Millisecond) != nil {
			break
		}
	}
	return "another process"
}
