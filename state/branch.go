package state

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A branch of another repository is written the way the state ref is:
// its ref is a Store's, in a bare repository zen keeps for it (a cache),
// fetched from the repository's URL, committed to with Commit, and pushed
// back. Fetching and pushing run git, as for the state ref's remote, so
// that every way git authenticates works; nothing needs a work tree.

// OpenBranch opens a branch (such as "main") of another repository
// through the bare repository dir, made when missing. The Store's ref is
// refs/heads/<branch> of dir: FetchBranch sets it to the repository's,
// Commit writes on it, PushBranch sends it.
func OpenBranch(ctx context.Context, dir, branch string) (*Store, error) {
	if !gitIsGitDir(dir) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(ctx, "git", "init", "--quiet", "--bare", dir)
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("git init --bare %s: %v: %s", dir, err, strings.TrimSpace(string(out)))
		}
	}
	return Open(dir, "refs/heads/"+branch)
}

// FetchBranch sets the Store's ref to the commit the repository at url has
// under the same name, and returns it: "" when url has no such branch
// (yet), and then the local ref is removed. Whatever the local ref held
// that url lacks (a commit a push failed to send) is dropped: url is the
// truth.
func (s *Store) FetchBranch(ctx context.Context, url string) (string, error) {
	out, err := s.git(ctx, "ls-remote", "--refs", url, s.ref)
	if err != nil {
		return "", remoteErrorf("%s: %v", url, err)
	}
	if strings.TrimSpace(out) == "" {
		_, _ = s.git(ctx, "update-ref", "-d", s.ref)
		return "", nil
	}
	if _, err := s.git(ctx, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", url, "+"+s.ref+":"+s.ref); err != nil {
		return "", remoteErrorf("%s: %v", url, err)
	}
	h, err := s.git(ctx, "rev-parse", "--verify", "--quiet", s.ref+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("%s: fetched %s: %w", url, s.ref, err)
	}
	s.mu.Lock()
	s.st.Reindex() // the fetch wrote packs go-git has not seen
	s.mu.Unlock()
	return strings.TrimSpace(h), nil
}

// PushBranch sends the Store's ref to url's ref of the same name, as a
// fast-forward of what url has: a remote that moved, or refuses (a hook),
// fails with git's and the remote's own words.
func (s *Store) PushBranch(ctx context.Context, url string) error {
	l, err := s.current()
	if err != nil {
		return err
	}
	if l.IsZero() {
		return nil
	}
	if _, err := s.git(ctx, "push", "--quiet", url, l.String()+":"+s.ref); err != nil {
		return remoteErrorf("push to %s: %v", url, err)
	}
	return nil
}

// Identity is who zen's commits are by in this repository, as Commit
// fills in an empty Change.Author: GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL,
// then the git config's user.name and user.email, then zen.
func (s *Store) Identity() Signature {
	sig := s.signature(Signature{})
	return Signature{Name: sig.Name, Email: sig.Email}
}
