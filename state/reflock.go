package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zen-dev/zen/internal/wait"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// gitRefLock is a held <ref>.lock file.
type gitRefLock struct {
	s         *Store
	path, ref string
	f         *os.File
	done      bool
}

// lock takes the ref's lock file the way git does, waiting up to
// LockTimeout for another writer to finish, or until ctx ends.
func (s *Store) lock(ctx context.Context) (*gitRefLock, error) {
	ref := s.refPath()
	lockPath := ref + ".lock"
	if err := gitMkdirAll(filepath.Dir(ref), s.commonDir); err != nil {
		return nil, fmt.Errorf("state ref %s: %w", s.ref, err)
	}
	deadline := time.Now().Add(LockTimeout)
	pause := time.Millisecond
	for {
		f, err := os.OpenFile(lockPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if err == nil {
			return &gitRefLock{s: s, path: lockPath, ref: ref, f: f}, nil
		}
		switch {
		case errors.Is(err, fs.ErrExist):
		case errors.Is(err, fs.ErrNotExist):
			// git pack-refs prunes empty directories under refs/.
			if err := gitMkdirAll(filepath.Dir(ref), s.commonDir); err != nil {
				return nil, fmt.Errorf("state ref %s: %w", s.ref, err)
			}
		default:
			return nil, fmt.Errorf("state ref %s: lock: %w", s.ref, err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("state ref %s: %w: another zen apply is recording; if none is running, remove %s", s.ref, ErrLocked, lockPath)
		}
		if err := wait.Sleep(ctx, min(left, pause/2+rand.N(pause))); err != nil {
			return nil, fmt.Errorf("state ref %s: stopped waiting for another writer's %s: %w", s.ref, lockPath, err)
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// gitMkdirAll creates dir and syncs the parents of what it created, up to
// top, so that the ref file does not vanish with its new directory in a
// crash.
func gitMkdirAll(dir, top string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	for d := filepath.Dir(dir); strings.HasPrefix(d, top); d = filepath.Dir(d) {
		if err := gitSyncFile(d); err != nil {
			return err
		}
		if d == top {
			break
		}
	}
	return nil
}

// commit moves the ref from old to new: it writes the lock file, syncs it
// and renames it over the ref, then syncs the directory. The caller has
// checked, holding the lock, that the ref is at old.
func (l *gitRefLock) commit(old, new plumbing.Hash, who object.Signature, msg string) error {
	s := l.s
	fail := func(err error) error { return fmt.Errorf("state ref %s: update %s: %w", s.ref, l.ref, err) }
	if _, err := l.f.WriteString(new.String() + "\n"); err != nil {
		return fail(err)
	}
	if err := l.f.Sync(); err != nil {
		return fail(err)
	}
	if err := l.f.Close(); err != nil {
		return fail(err)
	}
	if err := l.reflog(old, new, who, msg); err != nil {
		return fail(err)
	}
	if err := os.Rename(l.path, l.ref); err != nil {
		return fail(err)
	}
	l.done = true
	if err := gitSyncFile(filepath.Dir(l.ref)); err != nil {
		return fail(err)
	}
	return nil
}

// reflog appends to the ref's reflog when git would: when the log exists
// or core.logAllRefUpdates is "always" (refs/zen/* is not logged by
// default).
func (l *gitRefLock) reflog(old, new plumbing.Hash, who object.Signature, msg string) error {
	s := l.s
	p := filepath.Join(s.commonDir, "logs", filepath.FromSlash(s.ref))
	if _, err := os.Stat(p); err != nil {
		if !strings.EqualFold(s.configValue("core", "logallrefupdates"), "always") {
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		return err
	}
	subject, _, _ := strings.Cut(strings.TrimSpace(msg), "\n")
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s ", old, new)
	if err := who.Encode(&b); err != nil {
		f.Close()
		return err
	}
	fmt.Fprintf(&b, "\t%s\n", subject)
	_, err = f.Write(b.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// release removes the lock file unless it became the ref.
func (l *gitRefLock) release() {
	if l.done {
		return
	}
	l.f.Close()
	os.Remove(l.path)
}
