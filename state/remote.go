package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// The state ref is shared through a git remote. Fetching and pushing run
// the git command, so that every way git authenticates (ssh agents and
// keys, credential helpers, url.insteadOf, proxies) works as it does for
// the user's own git; the ref is read and written by zen as everywhere
// else.

// ErrRewritten is wrapped by Pull's error when the remote's state ref no
// longer holds what was fetched from it before: zen does not guess which
// history is right. Compare refs/zen/remotes/<remote>/state (the remote's,
// as fetched now) with the local ref, then reset one of them.
var ErrRewritten = errors.New("state moved in a way zen does not repair")

// ErrRemote is wrapped by the errors of a remote that could not be
// reached or refused the request for another reason than a moved ref.
var ErrRemote = errors.New("the git remote failed")

// remoteError is an error of the remote, reported in its own words.
type remoteError struct{ msg string }

func (e *remoteError) Error() string        { return e.msg }
func (e *remoteError) Is(target error) bool { return target == ErrRemote }

func remoteErrorf(format string, args ...any) error {
	return &remoteError{fmt.Sprintf(format, args...)}
}

// Sync is what Pull did.
type Sync struct {
	Remote string // the remote's name
	// Local and Remote commits before; Head is the local ref after.
	Before, RemoteHead, Head string
	// Replayed counts local commits written again on top of the remote's,
	// and Dropped lists the records of theirs that the remote's own
	// changed meanwhile, and that were kept as the remote has them.
	Replayed int
	Dropped  []string
	// Ahead counts the local commits the remote does not have.
	Ahead int
}

// gitTimeout bounds one git command against the remote.
var gitTimeout = 5 * time.Minute

// trackingRef is where the remote's state ref is fetched to.
func (s *Store) trackingRef(remote string) string {
	return "refs/zen/remotes/" + remote + "/" + strings.TrimPrefix(s.ref, "refs/zen/")
}

// git runs git on the repository, never prompting for credentials.
func (s *Store) git(ctx context.Context, args ...string) (string, error) {
	// A remote that does not answer, or asks for a password on a
	// terminal nobody watches, must not hang a CI job.
	ctx, cancel := context.WithTimeout(ctx, gitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", append([]string{"--git-dir", s.gitDir}, args...)...)
	cmd.Dir = s.top
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GCM_INTERACTIVE=never", "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// One line: git's own, joined.
		var lines []string
		for _, l := range strings.Split(stderr.String(), "\n") {
			if l = strings.Join(strings.Fields(l), " "); l != "" {
				lines = append(lines, l)
			}
		}
		msg := strings.Join(lines, "; ")
		if msg == "" {
			msg = err.Error()
		}
		return stdout.String(), &gitError{msg: fmt.Sprintf("git %s: %s", args[0], msg), err: err}
	}
	return stdout.String(), nil
}

// gitError is a failed git command: git's message, and its exit status.
type gitError struct {
	msg string
	err error
}

func (e *gitError) Error() string { return e.msg }
func (e *gitError) Unwrap() error { return e.err }

// HasRemote reports whether the repository has a git remote of that name.
func (s *Store) HasRemote(ctx context.Context, remote string) bool {
	out, err := s.git(ctx, "remote")
	return err == nil && slices.Contains(strings.Fields(out), remote)
}

// Fetch updates the tracking ref of the remote's state ref and returns the
// remote's commit ("" when the remote has no state yet).
func (s *Store) Fetch(ctx context.Context, remote string) (string, error) {
	track := s.trackingRef(remote)
	out, err := s.git(ctx, "ls-remote", "--refs", remote, s.ref)
	if err != nil {
		return "", remoteErrorf("state ref %s: fetch from %s: %v", s.ref, remote, err)
	}
	if strings.TrimSpace(out) == "" {
		// No state on the remote (yet, or any more): forget what was
		// fetched before.
		_, _ = s.git(ctx, "update-ref", "-d", track)
		return "", nil
	}
	if _, err := s.git(ctx, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, "+"+s.ref+":"+track); err != nil {
		return "", remoteErrorf("state ref %s: fetch from %s: %v", s.ref, remote, err)
	}
	h, err := s.git(ctx, "rev-parse", "--verify", "--quiet", track+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("state ref %s: fetched %s: %w", s.ref, track, err)
	}
	s.mu.Lock()
	s.st.Reindex() // the fetch wrote packs go-git has not seen
	s.mu.Unlock()
	return strings.TrimSpace(h), nil
}

// Pull fetches the remote's state ref and brings the local one up to it:
// the local ref moves to the remote's commit when it is behind, stays when
// it is ahead (commits not pushed yet), and when both moved, the local
// commits are written again on top of the remote's, one by one, with
// their messages and authors. Records are files, and two applies mostly
// write different ones; where the remote changed a pipeline's baseline, a
// model version or a stage that a local commit also changed, the remote's
// is kept and the local one listed in Dropped. Runs and cache entries are
// never dropped.
func (s *Store) Pull(ctx context.Context, remote string) (*Sync, error) {
	seen, _ := s.git(ctx, "rev-parse", "--verify", "--quiet", s.trackingRef(remote))
	seen = strings.TrimSpace(seen)
	r, err := s.Fetch(ctx, remote)
	if err != nil {
		return nil, err
	}
	if seen != "" && seen != r {
		// What was fetched before must still be in the remote's history:
		// a state ref rewritten there (force-pushed, reset) would have
		// the local commits replayed onto a history that dropped records.
		rewritten := r == ""
		if !rewritten {
			_, err := s.git(ctx, "merge-base", "--is-ancestor", seen, r)
			rewritten = err != nil
		}
		if rewritten {
			// Keep what was fetched before, so that the next pull says so
			// again until someone decides.
			_, _ = s.git(ctx, "update-ref", s.trackingRef(remote), seen)
			now := "no longer has it"
			if r != "" {
				now = "is at " + r + ", whose history lacks " + gitShort(seen)
			}
			return nil, fmt.Errorf("state ref %s on %s was rewritten outside zen: it %s. Nothing was changed; to take the remote's: git update-ref %s <commit> && git update-ref %s <commit>; to keep the local one: git push --force %s %s: %w",
				s.ref, remote, now, s.ref, s.trackingRef(remote), remote, s.ref, ErrRewritten)
		}
	}
	l, err := s.current()
	if err != nil {
		return nil, err
	}
	sync := &Sync{Remote: remote, Before: hashOrEmpty(l), RemoteHead: r, Head: hashOrEmpty(l)}
	if r == "" {
		n, err := s.count(l, plumbing.ZeroHash)
		sync.Ahead = n
		return sync, err
	}
	rh := plumbing.NewHash(r)
	switch {
	case l == rh:
		return sync, nil
	case l.IsZero():
		sync.Head = r
		return sync, s.move(ctx, l, rh, "zen: state pull from "+remote)
	}
	base, err := s.mergeBase(ctx, l, rh)
	if err != nil {
		return nil, err
	}
	switch base {
	case l: // behind: fast-forward
		sync.Head = r
		return sync, s.move(ctx, l, rh, "zen: state pull from "+remote+" (fast-forward)")
	case rh: // ahead: nothing to take
		sync.Ahead, err = s.count(l, rh)
		return sync, err
	}
	// Both moved: replay the local commits onto the remote's.
	local, err := s.commitsSince(l, base)
	if err != nil {
		return nil, err
	}
	backup := "refs/zen/backup/" + strings.TrimPrefix(s.ref, "refs/zen/")
	if _, err := s.git(ctx, "update-ref", backup, l.String()); err != nil {
		return nil, fmt.Errorf("state ref %s: keep the local commits in %s: %w", s.ref, backup, err)
	}
	if err := s.move(ctx, l, rh, "zen: state pull from "+remote+" (replaying local commits)"); err != nil {
		return nil, err
	}
	head := r
	// Any failure from here puts the local commits back where they were:
	// a ref half replayed would look merely ahead to the next pull.
	// It runs even when ctx ended: that is often why the replay failed.
	undo := func(cause error) error {
		if err := s.move(context.WithoutCancel(ctx), plumbing.NewHash(head), l, "zen: state pull from "+remote+" failed: local commits restored"); err != nil {
			return fmt.Errorf("%w; and restoring the local commits failed too (%v): they are in %s", cause, err, backup)
		}
		return cause
	}
	for _, c := range local {
		files, guard, err := s.changeOf(ctx, c)
		if err != nil {
			return nil, undo(err)
		}
		// A guarded record the remote changed since this commit's parent
		// is theirs to keep; only those are dropped.
		parent := plumbing.ZeroHash
		if len(c.ParentHashes) > 0 {
			parent = c.ParentHashes[0]
		}
		before, err := s.snapshot(parent)
		if err != nil {
			return nil, undo(err)
		}
		now, err := s.snapshot(plumbing.NewHash(head))
		if err != nil {
			return nil, undo(err)
		}
		for _, p := range guard {
			moved, err := entryDiffers(before, now, p)
			if err != nil {
				return nil, undo(err)
			}
			if moved {
				delete(files, p)
				sync.Dropped = append(sync.Dropped, p)
			}
		}
		ch := Change{Files: files, Message: c.Message, Author: Signature{Name: c.Author.Name, Email: c.Author.Email, When: c.Author.When}}
		h, err := s.Commit(ctx, head, ch)
		if err != nil {
			return nil, undo(fmt.Errorf("state ref %s: replay %s: %w", s.ref, gitShort(c.Hash.String()), err))
		}
		head = h
		sync.Replayed++
	}
	sync.Head = head
	sync.Ahead = sync.Replayed
	_, _ = s.git(ctx, "update-ref", "-d", backup)
	return sync, nil
}

// Push pushes the local state ref to the remote if the remote's is still
// at expected ("" for none), as git push --force-with-lease does. An error
// wrapping ErrStateMoved means the remote moved: Pull, then push again.
func (s *Store) Push(ctx context.Context, remote, expected string) error {
	l, err := s.current()
	if err != nil {
		return err
	}
	if l.IsZero() {
		return nil
	}
	if l.String() == expected {
		return nil // the remote has it
	}
	out, err := s.git(ctx, "push", "--porcelain", "--force-with-lease="+s.ref+":"+expected, remote, l.String()+":"+s.ref)
	if err == nil {
		_, _ = s.git(ctx, "update-ref", s.trackingRef(remote), l.String())
		return nil
	}
	// --porcelain reports the refusal on stdout: "!\tsrc:dst\t[rejected] (stale info)".
	msg := out + err.Error()
	// "[rejected]" is the lease or a fast-forward failing; "[remote
	// rejected]" is the remote refusing (a hook, a hidden ref).
	rejected := strings.Contains(strings.ReplaceAll(msg, "[remote rejected]", ""), "[rejected]")
	if rejected && (strings.Contains(msg, "stale info") || strings.Contains(msg, "fetch first") || strings.Contains(msg, "non-fast-forward")) {
		return fmt.Errorf("state ref %s: %s's moved since it was fetched: %w", s.ref, remote, ErrStateMoved)
	}
	return remoteErrorf("state ref %s: push to %s: %v (the records are kept in the local ref; the next zen apply or zen state push sends them)", s.ref, remote, err)
}

// move points the ref at to, if it is at from.
func (s *Store) move(ctx context.Context, from, to plumbing.Hash, msg string) error {
	lk, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer lk.release()
	now, err := s.current()
	if err != nil {
		return err
	}
	if now != from {
		return fmt.Errorf("state ref %s moved while it was being updated: %w", s.ref, ErrStateMoved)
	}
	return lk.commit(from, to, s.signature(Signature{}), msg+"\n")
}

func (s *Store) mergeBase(ctx context.Context, a, b plumbing.Hash) (plumbing.Hash, error) {
	out, err := s.git(ctx, "merge-base", a.String(), b.String())
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		// No common history: a state ref started in two places.
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("state ref %s: %w", s.ref, err)
	}
	return plumbing.NewHash(strings.TrimSpace(out)), nil
}

// commitsSince lists the first-parent commits from base (excluded) to
// head, oldest first.
func (s *Store) commitsSince(head, base plumbing.Hash) ([]*object.Commit, error) {
	var out []*object.Commit
	for h := head; h != base && !h.IsZero(); {
		c, err := s.readCommit(h)
		if err != nil {
			return nil, err
		}
		c.Hash = h
		out = append(out, c)
		h = plumbing.ZeroHash
		if len(c.ParentHashes) > 0 {
			h = c.ParentHashes[0]
		}
	}
	slices.Reverse(out)
	return out, nil
}

func (s *Store) count(head, base plumbing.Hash) (int, error) {
	cs, err := s.commitsSince(head, base)
	return len(cs), err
}

// changeOf returns the files commit c wrote (added, changed or, as nil,
// removed against its first parent) and the guarded ones among them:
// records that say what is current (pipelines/, stages/, submitted/) or
// must stay unique (models/).
func (s *Store) changeOf(ctx context.Context, c *object.Commit) (map[string][]byte, []string, error) {
	out, err := s.git(ctx, "diff-tree", "-r", "--root", "--no-commit-id", "--name-only", "--diff-filter=AMTD", "-z", c.Hash.String())
	if err != nil {
		return nil, nil, fmt.Errorf("state ref %s: %w", s.ref, err)
	}
	after, err := s.snapshot(c.Hash)
	if err != nil {
		return nil, nil, err
	}
	files := map[string][]byte{}
	var guard []string
	for _, p := range strings.Split(strings.TrimRight(out, "\x00"), "\x00") {
		if p == "" {
			continue
		}
		data, ok, err := after.Read(p)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			files[p] = nil // removed
		} else {
			files[p] = data
		}
		switch strings.SplitN(p, "/", 2)[0] {
		case "pipelines", "stages", "models", "submitted":
			guard = append(guard, p)
		}
	}
	return files, guard, nil
}

func hashOrEmpty(h plumbing.Hash) string {
	if h.IsZero() {
		return ""
	}
	return h.String()
}
