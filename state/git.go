// Package state is zen's record of what it did: commits on a git ref
// (refs/zen/state) holding JSON records, written without touching the work
// tree or the index, and moved with compare-and-swap.
//
// The git plumbing and the record store are apart:
//
//   - git.go: opening a repository's object store and reading objects;
//   - snapshot.go: one commit of the ref, read as a tree of files;
//   - commit.go: a Change written as one commit on top of a base, guarded
//     against records that moved; objects.go writes its trees and blobs,
//     fsynced; reflock.go moves the ref under git's lock file, with a
//     reflog entry; log.go lists the ref's commits;
//   - records.go: the records themselves (runs, cache entries, baselines,
//     model versions, stages, submissions) and their layout on the ref;
//   - journal.go: what a running apply finished, for recovery after a kill;
//     applylock.go: one apply at a time in a clone;
//   - remote.go: sharing the ref through a git remote (pull, push, replay).
package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"
)

// DefaultRef is the ref zen records on.
const DefaultRef = "refs/zen/state"

// ErrStateMoved is returned when the state ref moved since a plan was made
// and the change overlaps with what moved it.
var ErrStateMoved = errors.New("state moved, plan again")

// ErrNotRepository is returned by Open for a directory outside any git
// repository.
var ErrNotRepository = errors.New("not a git repository")

// ErrLocked is returned by Commit when another writer held the ref's lock
// file for longer than LockTimeout.
var ErrLocked = errors.New("locked")

// LockTimeout is how long Commit waits for another writer's lock file
// before it gives up. A lock held that long is most likely left behind by a
// writer that was killed: git never removes such files by itself either.
var LockTimeout = 5 * time.Second

// Store is the state ref of one repository. It is safe for concurrent use;
// other processes, zen or git, are kept out by the ref's lock file.
type Store struct {
	ref       string
	gitDir    string // this work tree's git dir: .git, or .git/worktrees/<name>
	commonDir string // where refs and objects live: the main .git
	// top is the work tree's top folder (the git dir, when bare): git
	// runs there, so that a remote's relative URL means what it means
	// to git wherever zen was started.
	top string
	st  *filesystem.Storage

	// mu serialises go-git's object storage, which is not safe for
	// concurrent use (it loads pack indexes lazily into a map).
	mu sync.Mutex
	// reads counts objects read, so tests can check that reads and
	// commits follow only the paths they touch.
	reads atomic.Int64

	// trees keeps decoded trees: a tree never changes under its hash, and a
	// plan looks up many records under the same few folders (cache/,
	// pipelines/).
	treeMu sync.Mutex
	trees  map[plumbing.Hash][]object.TreeEntry
}

// maxTrees bounds the decoded trees a Store keeps.
const maxTrees = 4096

// Open opens the state ref named ref ("" means DefaultRef) of the git
// repository containing dir. Like git, it searches dir and its parents for
// a .git directory or file, or a bare repository. In a linked work tree
// the ref is the one of the main repository: refs and objects live in the
// common git dir. GIT_DIR and friends are not consulted: dir says where.
func Open(dir, ref string) (*Store, error) {
	if ref == "" {
		ref = DefaultRef
	}
	if err := gitCheckRefName(ref); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("open state ref %s: %w", ref, err)
	}
	start := abs
	if !fi.IsDir() {
		start = filepath.Dir(abs)
	}
	gitDir, top, err := gitDiscover(start)
	if err != nil {
		return nil, err
	}
	common := gitDir
	if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		c := strings.TrimSpace(string(b))
		if !filepath.IsAbs(c) {
			c = filepath.Join(gitDir, c)
		}
		common = filepath.Clean(c)
	}
	s := &Store{ref: ref, gitDir: gitDir, commonDir: common, top: top}
	if cfg, err := gitReadConfig(filepath.Join(common, "config")); err == nil {
		if f := gitConfigValue(cfg, "extensions", "objectformat"); f != "" && !strings.EqualFold(f, "sha1") {
			return nil, fmt.Errorf("state ref %s: %s: object format %s is not supported (only sha1)", ref, common, f)
		}
		if f := gitConfigValue(cfg, "extensions", "refstorage"); f != "" && !strings.EqualFold(f, "files") {
			return nil, fmt.Errorf("state ref %s: %s: ref storage %s is not supported (only files)", ref, common, f)
		}
	}
	var dot billy.Filesystem = osfs.New(gitDir)
	if common != gitDir {
		dot = dotgit.NewRepositoryFilesystem(dot, osfs.New(common))
	}
	s.st = filesystem.NewStorage(dot, cache.NewObjectLRUDefault())
	return s, nil
}

// gitCheckRefName accepts the names git accepts for a shared ref.
func gitCheckRefName(ref string) error {
	if !strings.HasPrefix(ref, "refs/") || plumbing.ReferenceName(ref).Validate() != nil ||
		strings.HasSuffix(ref, ".lock") || strings.Contains(ref, "/.") {
		return fmt.Errorf("state ref %q: not a valid ref name under refs/", ref)
	}
	for _, p := range []string{"refs/worktree/", "refs/bisect/", "refs/rewritten/"} {
		if strings.HasPrefix(ref, p) {
			return fmt.Errorf("state ref %q: refs under %s belong to one work tree; use a shared ref such as %s", ref, p, DefaultRef)
		}
	}
	return nil
}

// gitDiscover finds the git dir for dir the way git does: at each level
// up, a .git directory, a .git file naming one, or a bare repository. top
// is the folder it was found in: the work tree's top, or the bare
// repository.
func gitDiscover(dir string) (gitDir, top string, err error) {
	for d := dir; ; {
		dot := filepath.Join(d, ".git")
		fi, err := os.Stat(dot)
		switch {
		case err == nil && fi.IsDir():
			if gitIsGitDir(dot) {
				return dot, d, nil
			}
		case err == nil:
			b, err := os.ReadFile(dot)
			if err != nil {
				return "", "", fmt.Errorf("read %s: %w", dot, err)
			}
			target, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir:")
			if !ok {
				return "", "", fmt.Errorf("invalid gitfile %s: no gitdir: line", dot)
			}
			target = strings.TrimSpace(target)
			if !filepath.IsAbs(target) {
				target = filepath.Join(d, target)
			}
			if !gitIsGitDir(target) {
				return "", "", fmt.Errorf("%s names %s, which is not a git directory", dot, target)
			}
			return filepath.Clean(target), d, nil
		case !errors.Is(err, fs.ErrNotExist):
			return "", "", err
		}
		if gitIsGitDir(d) {
			return d, d, nil // bare
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", "", fmt.Errorf("%w (or any parent): %s", ErrNotRepository, dir)
		}
		d = parent
	}
}

// gitIsGitDir is git's is_git_directory, roughly: HEAD, and objects and
// refs here or in a common dir.
func gitIsGitDir(d string) bool {
	if fi, err := os.Stat(filepath.Join(d, "HEAD")); err != nil || fi.IsDir() {
		return false
	}
	if _, err := os.Stat(filepath.Join(d, "commondir")); err == nil {
		return true
	}
	for _, sub := range []string{"objects", "refs"} {
		if fi, err := os.Stat(filepath.Join(d, sub)); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// Ref returns the ref's name.
func (s *Store) Ref() string { return s.ref }

// refPath is the loose ref file; refs other than per-work-tree ones live in
// the common dir.
func (s *Store) refPath() string {
	return filepath.Join(s.commonDir, filepath.FromSlash(s.ref))
}

// current returns the commit the ref points at, or the zero hash when
// there is no such ref. A loose ref wins over packed-refs, as in git.
func (s *Store) current() (plumbing.Hash, error) {
	p := s.refPath()
	b, err := os.ReadFile(p)
	if err == nil {
		line := strings.TrimSpace(string(b))
		switch {
		case plumbing.IsHash(line):
			return plumbing.NewHash(line), nil
		case line == "":
			return plumbing.ZeroHash, fmt.Errorf("state ref %s: %s is empty (a writer crashed?): point it at a commit with git update-ref, or remove it", s.ref, p)
		case strings.HasPrefix(line, "ref:"):
			return plumbing.ZeroHash, fmt.Errorf("state ref %s: is a symbolic ref (%s); zen needs a plain ref", s.ref, line)
		default:
			return plumbing.ZeroHash, fmt.Errorf("state ref %s: %s does not hold a commit hash", s.ref, p)
		}
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return plumbing.ZeroHash, fmt.Errorf("state ref %s: %w", s.ref, err)
	}
	packed, err := os.ReadFile(filepath.Join(s.commonDir, "packed-refs"))
	if errors.Is(err, fs.ErrNotExist) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("state ref %s: %w", s.ref, err)
	}
	for line := range bytes.Lines(packed) {
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 || line[0] == '#' || line[0] == '^' {
			continue
		}
		h, name, ok := bytes.Cut(line, []byte{' '})
		if ok && string(name) == s.ref {
			if !plumbing.IsHash(string(h)) {
				// Not an absent ref: read as one, the state would start over.
				return plumbing.ZeroHash, fmt.Errorf("state ref %s: its line in packed-refs does not hold a commit hash", s.ref)
			}
			return plumbing.NewHash(string(h)), nil
		}
	}
	return plumbing.ZeroHash, nil
}

// load reads the content of object h, which must be of type want.
func (s *Store) load(h plumbing.Hash, want plumbing.ObjectType) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads.Add(1)
	obj, err := s.st.EncodedObject(plumbing.AnyObject, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		// git gc may have packed it since the pack indexes were loaded.
		s.st.Reindex()
		obj, err = s.st.EncodedObject(plumbing.AnyObject, h)
	}
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("%s %s: object missing from the repository", want, h)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", want, h, err)
	}
	if obj.Type() != want {
		return nil, fmt.Errorf("%s %s: is a %s", want, h, obj.Type())
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", want, h, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", want, h, err)
	}
	return data, nil
}

// decode loads object h of type want into v.
func (s *Store) decode(h plumbing.Hash, want plumbing.ObjectType, v interface {
	Decode(plumbing.EncodedObject) error
}) error {
	data, err := s.load(h, want)
	if err != nil {
		return err
	}
	mo := &plumbing.MemoryObject{}
	mo.SetType(want)
	mo.Write(data)
	if err := v.Decode(mo); err != nil {
		return fmt.Errorf("%s %s: %w", want, h, err)
	}
	return nil
}

// readTree returns the entries of tree h, in the order git stores them.
func (s *Store) readTree(h plumbing.Hash) ([]object.TreeEntry, error) {
	s.treeMu.Lock()
	entries, ok := s.trees[h]
	s.treeMu.Unlock()
	if ok {
		return slices.Clone(entries), nil // callers may change their copy
	}
	var t object.Tree
	if err := s.decode(h, plumbing.TreeObject, &t); err != nil {
		return nil, err
	}
	s.treeMu.Lock()
	if s.trees == nil || len(s.trees) >= maxTrees {
		s.trees = map[plumbing.Hash][]object.TreeEntry{}
	}
	s.trees[h] = slices.Clone(t.Entries)
	s.treeMu.Unlock()
	return t.Entries, nil
}

// readCommit decodes commit h.
func (s *Store) readCommit(h plumbing.Hash) (*object.Commit, error) {
	var c object.Commit
	if err := s.decode(h, plumbing.CommitObject, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// Head returns a read-only snapshot of the ref's current commit. A missing
// ref is the empty state: a snapshot whose Commit is "".
func (s *Store) Head() (*Snapshot, error) {
	h, err := s.current()
	if err != nil {
		return nil, err
	}
	return s.snapshot(h)
}

// At returns a read-only snapshot of the state at one of its commits.
func (s *Store) At(commit string) (*Snapshot, error) {
	if !plumbing.IsHash(commit) {
		return nil, fmt.Errorf("state ref %s: %q is not a commit hash", s.ref, commit)
	}
	return s.snapshot(plumbing.NewHash(commit))
}

func (s *Store) snapshot(h plumbing.Hash) (*Snapshot, error) {
	if h.IsZero() {
		return &Snapshot{s: s}, nil
	}
	c, err := s.readCommit(h)
	if err != nil {
		return nil, fmt.Errorf("state ref %s: %w", s.ref, err)
	}
	return &Snapshot{s: s, commit: h, root: c.TreeHash}, nil
}
