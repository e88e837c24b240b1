package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
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

// applyLockPoll is how often a waiting LockApply tries again.
const applyLockPoll = 100 * time.Millisecond

// LockApply takes the clone's apply lock for what ("zen apply"), waiting
// up to timeout for another holder (0: not at all).
func (s *Store) LockApply(what string, timeout time.Duration) (*ApplyLock, error) {
	p := filepath.Join(s.commonDir, "zen-apply.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("apply lock: %w", err)
	}
	deadline := time.Now().Add(timeout)
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
			holder := "another process"
			// The holder writes who it is right after it takes the lock.
			for range 20 {
				if b, rerr := os.ReadFile(p); rerr == nil && len(b) > 0 {
					holder = strings.TrimSpace(string(b))
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			f.Close()
			wait := "wait for it to finish, or pass --lock-timeout to wait"
			if timeout > 0 {
				wait = fmt.Sprintf("waited %s; try again once it has finished", timeout)
			}
			return nil, fmt.Errorf("%w: %s holds %s (%s)", ErrApplyLocked, holder, p, wait)
		}
		time.Sleep(applyLockPoll)
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
