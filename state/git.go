// Package state is zen's record of what it did: commits on a git ref
// (refs/zen/state) holding JSON records, written without touching the work
// tree or the index, and moved with compare-and-swap.
package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zen-dev/zen/internal/failpoint"
	"github.com/zen-dev/zen/internal/wait"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	formatcfg "github.com/go-git/go-git/v5/plumbing/format/config"
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

// Snapshot is the state at one commit of the ref. It reads objects on
// demand, following only the trees on the paths asked for, so a state of
// any size costs a read what its path costs. It is safe for concurrent use.
type Snapshot struct {
	s      *Store
	commit plumbing.Hash
	root   plumbing.Hash // zero for the empty state
}

// Commit returns the snapshot's commit hash, or "" for the empty state.
func (sn *Snapshot) Commit() string {
	if sn.commit.IsZero() {
		return ""
	}
	return sn.commit.String()
}

func (sn *Snapshot) errorf(p, format string, args ...any) error {
	return fmt.Errorf("state ref %s: commit %s: %s: %w", sn.s.ref, gitShort(sn.Commit()), p, fmt.Errorf(format, args...))
}

// lookup finds the entry at p ("" is the root), reading only the trees on
// the way there.
func (sn *Snapshot) lookup(p string) (object.TreeEntry, bool, error) {
	if sn.root.IsZero() {
		return object.TreeEntry{}, false, nil
	}
	e := object.TreeEntry{Mode: filemode.Dir, Hash: sn.root}
	if p == "" {
		return e, true, nil
	}
	walked := ""
	for name := range strings.SplitSeq(p, "/") {
		if e.Mode != filemode.Dir {
			// zen writes records only under folders: a file on the way is a
			// hand edit, which its writer would refuse after the steps ran.
			return object.TreeEntry{}, false, sn.errorf(p, "%s is a file, not a folder", walked)
		}
		walked = path.Join(walked, name)
		entries, err := sn.s.readTree(e.Hash)
		if err != nil {
			return object.TreeEntry{}, false, sn.errorf(p, "%w", err)
		}
		found := false
		for _, c := range entries {
			if c.Name == name {
				e, found = c, true
				break
			}
		}
		if !found {
			return object.TreeEntry{}, false, nil
		}
	}
	return e, true, nil
}

// Read returns the content of the file at path; ok is false when there is
// no such file. It reads only the trees on the way to path, never the
// whole state.
func (sn *Snapshot) Read(path string) ([]byte, bool, error) {
	if err := gitCheckPath(path); err != nil {
		return nil, false, fmt.Errorf("state ref %s: %w", sn.s.ref, err)
	}
	e, ok, err := sn.lookup(path)
	if err != nil || !ok {
		return nil, false, err
	}
	if e.Mode == filemode.Dir || e.Mode == filemode.Submodule {
		return nil, false, sn.errorf(path, "not a file")
	}
	data, err := sn.s.load(e.Hash, plumbing.BlobObject)
	if err != nil {
		return nil, false, sn.errorf(path, "%w", err)
	}
	return data, true, nil
}

// dir looks up the directory dir ("" or "." is the root); ok is false when
// there is none.
func (sn *Snapshot) dir(dir string) (plumbing.Hash, string, bool, error) {
	dir = strings.TrimSuffix(dir, "/")
	if dir == "." {
		dir = ""
	}
	if dir != "" {
		if err := gitCheckPath(dir); err != nil {
			return plumbing.ZeroHash, "", false, fmt.Errorf("state ref %s: %w", sn.s.ref, err)
		}
	}
	e, ok, err := sn.lookup(dir)
	if err != nil || !ok {
		return plumbing.ZeroHash, dir, false, err
	}
	if e.Mode != filemode.Dir {
		return plumbing.ZeroHash, dir, false, sn.errorf(dir, "not a directory")
	}
	return e.Hash, dir, true, nil
}

// List returns the sorted names of the entries, files and directories,
// directly under dir ("" is the root). A missing dir lists as empty.
func (sn *Snapshot) List(dir string) ([]string, error) {
	h, dir, ok, err := sn.dir(dir)
	if err != nil || !ok {
		return nil, err
	}
	entries, err := sn.s.readTree(h)
	if err != nil {
		return nil, sn.errorf(dir, "%w", err)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name
	}
	sort.Strings(names)
	return names, nil
}

// Walk calls fn with the path of every file under dir ("" is the root),
// in sorted order. A missing dir has no files. When fn returns an error,
// Walk stops and returns it; fs.SkipAll stops it without an error.
func (sn *Snapshot) Walk(dir string, fn func(path string) error) error {
	h, dir, ok, err := sn.dir(dir)
	if err != nil || !ok {
		return err
	}
	var walk func(prefix string, h plumbing.Hash) error
	walk = func(prefix string, h plumbing.Hash) error {
		entries, err := sn.s.readTree(h)
		if err != nil {
			return sn.errorf(prefix, "%w", err)
		}
		// git's order, where a directory sorts as name+"/", is the
		// sorted order of the full paths.
		entries = append([]object.TreeEntry(nil), entries...)
		sort.Stable(object.TreeEntrySorter(entries))
		for _, e := range entries {
			p := path.Join(prefix, e.Name)
			if e.Mode == filemode.Dir {
				err = walk(p, e.Hash)
			} else {
				err = fn(p)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(dir, h); err != nil && !errors.Is(err, fs.SkipAll) {
		return err
	}
	return nil
}

// Change is one commit's worth of writes.
type Change struct {
	// Files maps slash-separated paths to their new content, written as
	// regular files (mode 0644); a nil content removes the file (and the
	// folders it leaves empty). Other files of the state are kept.
	Files map[string][]byte
	// Guard lists paths, files or directories ("" is the whole state),
	// that must not differ between the base and the ref's current commit
	// for the change to be replayed on a ref that moved.
	Guard []string
	// Message is the commit message; "" is "zen: record state".
	Message string
	// Author defaults to GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL, then
	// user.name and user.email of the repository's git config (local,
	// global, system), then "zen <zen@localhost>"; When defaults to now.
	Author Signature
}

// Signature names who made a commit, and when.
type Signature struct {
	Name, Email string
	When        time.Time
}

// Commit writes ch on top of base (a commit hash, "" for no state yet) and
// moves the ref with compare-and-swap. When the ref is no longer at base
// and none of ch.Guard differs between base and the ref's commit, ch is
// replayed on top of the ref's commit, since records are independent
// files; otherwise the error wraps ErrStateMoved and names the path that
// moved. It returns the new commit's hash.
//
// Objects are written and synced to disk before the ref moves; the ref is
// moved the way git moves refs (a <ref>.lock file, renamed over the ref),
// so that neither a crash nor a concurrent git or zen can lose an update.
func (s *Store) Commit(ctx context.Context, base string, ch Change) (string, error) {
	baseHash := plumbing.ZeroHash
	if base != "" {
		if !plumbing.IsHash(base) {
			return "", fmt.Errorf("state ref %s: base %q is not a commit hash", s.ref, base)
		}
		baseHash = plumbing.NewHash(base)
	}
	files, err := gitSortFiles(ch.Files)
	if err != nil {
		return "", fmt.Errorf("state ref %s: %w", s.ref, err)
	}
	for _, g := range ch.Guard {
		if g != "" {
			if err := gitCheckPath(g); err != nil {
				return "", fmt.Errorf("state ref %s: guard: %w", s.ref, err)
			}
		}
	}
	msg := ch.Message
	if strings.TrimSpace(msg) == "" {
		msg = "zen: record state"
	}
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	w := &gitWriter{s: s, blobs: map[string]plumbing.Hash{}, msg: msg, author: s.signature(ch.Author)}

	// Build on the ref as it is now without holding the lock, so that
	// writers only queue for the rename; whoever finds the ref moved
	// once it holds the lock builds again, and then nobody can move it.
	cur, err := s.current()
	if err != nil {
		return "", err
	}
	commit, err := w.build(baseHash, cur, files, ch.Guard)
	if err != nil {
		return "", err
	}
	if err := w.sync(); err != nil {
		return "", fmt.Errorf("state ref %s: sync objects: %w", s.ref, err)
	}
	failpoint.Hit(failpoint.ObjectsWritten)
	lk, err := s.lock(ctx)
	if err != nil {
		return "", err
	}
	defer lk.release()
	now, err := s.current()
	if err != nil {
		return "", err
	}
	if now != cur {
		if commit, err = w.build(baseHash, now, files, ch.Guard); err != nil {
			return "", err
		}
		if err := w.sync(); err != nil {
			return "", fmt.Errorf("state ref %s: sync objects: %w", s.ref, err)
		}
	}
	if err := lk.commit(now, commit, w.author, msg); err != nil {
		return "", err
	}
	failpoint.Hit(failpoint.RefMoved)
	return commit.String(), nil
}

// checkGuard fails with ErrStateMoved when a guarded path differs between
// the base and the current commit.
func (s *Store) checkGuard(base, cur plumbing.Hash, guard []string) error {
	if len(guard) == 0 {
		return nil
	}
	from, err := s.snapshot(base)
	if err != nil {
		return fmt.Errorf("%w (the base of this change)", err)
	}
	to, err := s.snapshot(cur)
	if err != nil {
		return err
	}
	for _, p := range guard {
		moved, err := entryDiffers(from, to, p)
		if err != nil {
			return err
		}
		if moved {
			what := p
			if p == "" {
				what = "the state"
			}
			return fmt.Errorf("state ref %s moved from %s to %s and changed %s: %w",
				s.ref, gitDescribe(base), gitDescribe(cur), what, ErrStateMoved)
		}
	}
	return nil
}

// entryDiffers reports whether the file or folder at p differs between two
// snapshots: there in one only, or with other content or mode.
func entryDiffers(from, to *Snapshot, p string) (bool, error) {
	a, aok, err := from.lookup(p)
	if err != nil {
		return false, err
	}
	b, bok, err := to.lookup(p)
	if err != nil {
		return false, err
	}
	return aok != bok || a.Hash != b.Hash || a.Mode != b.Mode, nil
}

// signature fills in a commit's author the way git does.
func (s *Store) signature(a Signature) object.Signature {
	if a.Name == "" {
		a.Name = os.Getenv("GIT_AUTHOR_NAME")
	}
	if a.Email == "" {
		a.Email = os.Getenv("GIT_AUTHOR_EMAIL")
	}
	if a.Name == "" || a.Email == "" {
		name, email := s.configUser()
		if a.Name == "" {
			a.Name = name
		}
		if a.Email == "" {
			a.Email = email
		}
	}
	// git strips what would break the "Name <email> time zone" line.
	clean := func(v string) string {
		return strings.TrimSpace(strings.Map(func(r rune) rune {
			if r == '<' || r == '>' || r == '\n' || r == 0 {
				return -1
			}
			return r
		}, v))
	}
	a.Name, a.Email = clean(a.Name), clean(a.Email)
	if a.Name == "" {
		a.Name = "zen"
	}
	if a.Email == "" {
		a.Email = "zen@localhost"
	}
	if a.When.IsZero() {
		a.When = time.Now()
	}
	return object.Signature{Name: a.Name, Email: a.Email, When: a.When}
}

// configFiles lists the git config files in increasing precedence, the
// way git finds them (GIT_CONFIG_NOSYSTEM, GIT_CONFIG_SYSTEM,
// GIT_CONFIG_GLOBAL, XDG_CONFIG_HOME are honoured; include is not).
func (s *Store) configFiles() []string {
	var files []string
	switch strings.ToLower(os.Getenv("GIT_CONFIG_NOSYSTEM")) {
	case "", "0", "false", "no", "off":
		if p := os.Getenv("GIT_CONFIG_SYSTEM"); p != "" {
			files = append(files, p)
		} else {
			files = append(files, "/etc/gitconfig")
		}
	}
	if p, ok := os.LookupEnv("GIT_CONFIG_GLOBAL"); ok {
		if p != "" {
			files = append(files, p)
		}
	} else {
		home, _ := os.UserHomeDir()
		xdg := os.Getenv("XDG_CONFIG_HOME")
		if xdg == "" && home != "" {
			xdg = filepath.Join(home, ".config")
		}
		if xdg != "" {
			files = append(files, filepath.Join(xdg, "git", "config"))
		}
		if home != "" {
			files = append(files, filepath.Join(home, ".gitconfig"))
		}
	}
	files = append(files, filepath.Join(s.commonDir, "config"))
	if s.gitDir != s.commonDir {
		files = append(files, filepath.Join(s.gitDir, "config.worktree"))
	}
	return files
}

// configValue returns the value of section.key in effect, or "".
func (s *Store) configValue(section, key string) string {
	v := ""
	for _, f := range s.configFiles() {
		cfg, err := gitReadConfig(f)
		if err != nil {
			continue
		}
		if x := gitConfigValue(cfg, section, key); x != "" {
			v = x
		}
	}
	return v
}

func (s *Store) configUser() (name, email string) {
	return s.configValue("user", "name"), s.configValue("user", "email")
}

func gitReadConfig(file string) (*formatcfg.Config, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg := formatcfg.New()
	if err := formatcfg.NewDecoder(f).Decode(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// gitConfigValue returns the last value of section.key (no subsection).
func gitConfigValue(cfg *formatcfg.Config, section, key string) string {
	v := ""
	for _, sec := range cfg.Sections {
		if sec.IsName(section) && sec.Options.Has(key) {
			v = sec.Options.Get(key)
		}
	}
	return v
}

// gitWriter writes the objects of one Commit call and remembers the loose
// ones, to sync them before the ref moves.
type gitWriter struct {
	s      *Store
	msg    string
	author object.Signature
	blobs  map[string]plumbing.Hash // path → blob, kept across a rebuild
	loose  []plumbing.Hash          // written, not yet synced
}

// build writes the commit of files over cur, checking the guard first when
// cur is not base.
func (w *gitWriter) build(base, cur plumbing.Hash, files []gitFile, guard []string) (plumbing.Hash, error) {
	s := w.s
	if cur != base {
		if err := s.checkGuard(base, cur, guard); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	var root plumbing.Hash
	var parents []plumbing.Hash
	if !cur.IsZero() {
		sn, err := s.snapshot(cur)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		root, parents = sn.root, []plumbing.Hash{cur}
	}
	tree, err := w.tree("", root, files)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("state ref %s: write tree on %s: %w", s.ref, gitDescribe(cur), err)
	}
	c := &object.Commit{Author: w.author, Committer: w.author, Message: w.msg, TreeHash: tree, ParentHashes: parents}
	obj := &plumbing.MemoryObject{}
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("state ref %s: encode commit: %w", s.ref, err)
	}
	if err := w.write(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("state ref %s: write commit: %w", s.ref, err)
	}
	return obj.Hash(), nil
}

// gitFile is one file of a Change: its path split at the first slash as
// the tree is descended.
type gitFile struct {
	full, rest string
	data       []byte
}

// gitSortFiles checks the paths of a Change and sorts them.
func gitSortFiles(m map[string][]byte) ([]gitFile, error) {
	files := make([]gitFile, 0, len(m))
	for p, data := range m {
		if err := gitCheckPath(p); err != nil {
			return nil, err
		}
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := m[d]; ok {
				return nil, fmt.Errorf("%s and %s: a path cannot be both a file and a directory", d, p)
			}
		}
		files = append(files, gitFile{full: p, rest: p, data: data})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].full < files[j].full })
	return files, nil
}

// gitCheckPath accepts a clean relative slash-separated path that git
// accepts in a tree.
func gitCheckPath(p string) error {
	if p == "" {
		return fmt.Errorf("empty path")
	}
	for name := range strings.SplitSeq(p, "/") {
		switch {
		case name == "" || name == "." || name == "..":
			return fmt.Errorf("path %q: not a clean relative slash-separated path", p)
		case strings.EqualFold(name, ".git"):
			return fmt.Errorf("path %q: git does not allow .git in a tree", p)
		case strings.IndexByte(name, 0) >= 0:
			return fmt.Errorf("path %q: NUL byte in a path", p)
		}
	}
	return nil
}

// tree writes the tree base (zero: none) of directory dir with files
// written over it, and returns its hash. Only the trees on the paths of
// files are read and rewritten; other entries keep their hashes.
func (w *gitWriter) tree(dir string, base plumbing.Hash, files []gitFile) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	if !base.IsZero() {
		var err error
		if entries, err = w.s.readTree(base); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	index := make(map[string]int, len(entries))
	for i, e := range entries {
		index[e.Name] = i
	}
	removed := map[string]bool{}
	remove := func(name string) { removed[name] = true }
	set := func(e object.TreeEntry) {
		delete(removed, e.Name)
		if i, ok := index[e.Name]; ok {
			entries[i] = e
			return
		}
		index[e.Name] = len(entries)
		entries = append(entries, e)
	}
	// files is sorted, so the files of one subdirectory are adjacent.
	for i := 0; i < len(files); {
		f := files[i]
		name, _, nested := strings.Cut(f.rest, "/")
		p := path.Join(dir, name)
		old, exists := object.TreeEntry{}, false
		if j, ok := index[name]; ok {
			old, exists = entries[j], true
		}
		if !nested {
			if exists && old.Mode == filemode.Dir {
				return plumbing.ZeroHash, fmt.Errorf("%s: is a directory on the state ref", p)
			}
			if f.data == nil {
				if exists {
					remove(name)
				}
				i++
				continue
			}
			h, err := w.blob(f.full, f.data)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			set(object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: h})
			i++
			continue
		}
		var sub []gitFile
		for ; i < len(files); i++ {
			n, r, ok := strings.Cut(files[i].rest, "/")
			if !ok || n != name {
				break
			}
			sub = append(sub, gitFile{full: files[i].full, rest: r, data: files[i].data})
		}
		var child plumbing.Hash
		if exists {
			if old.Mode != filemode.Dir {
				return plumbing.ZeroHash, fmt.Errorf("%s: is a file on the state ref", p)
			}
			child = old.Hash
		}
		h, err := w.tree(p, child, sub)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if h == emptyTree {
			// Its last file was removed: git keeps no empty folders.
			if exists {
				remove(name)
			}
			continue
		}
		set(object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
	}
	if len(removed) > 0 {
		kept := entries[:0]
		for _, e := range entries {
			if !removed[e.Name] {
				kept = append(kept, e)
			}
		}
		entries = kept
	}
	// git orders entries by name, a directory's name with "/" after it;
	// go-git refuses to encode a tree in any other order.
	sort.Stable(object.TreeEntrySorter(entries))
	obj := &plumbing.MemoryObject{}
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("tree %s: %w", dir, err)
	}
	if err := w.write(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return obj.Hash(), nil
}

// emptyTree is the hash of git's empty tree.
var emptyTree = plumbing.NewHash("4b825dc642cb6eb9a060e54bf8d69288fbee4904")

// blob writes data as the blob of path p, once per Commit call.
func (w *gitWriter) blob(p string, data []byte) (plumbing.Hash, error) {
	if h, ok := w.blobs[p]; ok {
		return h, nil
	}
	obj := &plumbing.MemoryObject{}
	obj.SetType(plumbing.BlobObject)
	if _, err := obj.Write(data); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.write(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("%s: %w", p, err)
	}
	w.blobs[p] = obj.Hash()
	return obj.Hash(), nil
}

// write stores obj as a loose object unless the repository has it.
func (w *gitWriter) write(obj *plumbing.MemoryObject) error {
	s := w.s
	h := obj.Hash()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.HasEncodedObject(h) == nil {
		return nil
	}
	if _, err := s.st.SetEncodedObject(obj); err != nil {
		return fmt.Errorf("write %s %s: %w", obj.Type(), h, err)
	}
	w.loose = append(w.loose, h)
	return nil
}

// sync flushes the loose objects written so far to disk, so that the ref
// never points at objects a crash could lose. go-git writes an object to
// a temporary file and renames it, without fsync.
func (w *gitWriter) sync() error {
	if len(w.loose) == 0 {
		return nil
	}
	objects := filepath.Join(w.s.commonDir, "objects")
	dirs := map[string]bool{}
	for _, h := range w.loose {
		hex := h.String()
		p := filepath.Join(objects, hex[:2], hex[2:])
		if err := gitSyncFile(p); err != nil {
			return err
		}
		dirs[filepath.Dir(p)] = true
	}
	w.loose = w.loose[:0]
	dirs[objects] = true // a fan-out directory may be new
	for d := range dirs {
		if err := gitSyncFile(d); err != nil {
			return err
		}
	}
	return nil
}

// gitSyncFile fsyncs a file or a directory.
func gitSyncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

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

// LogEntry is one commit of the state ref.
type LogEntry struct {
	Commit  string    `json:"commit"`
	Message string    `json:"message"`
	Author  string    `json:"author"` // "Name <email>"
	When    time.Time `json:"when"`
}

// Log lists the ref's commits, newest first, following first parents, up
// to n of them (n <= 0: all).
func (s *Store) Log(n int) ([]LogEntry, error) {
	h, err := s.current()
	if err != nil {
		return nil, err
	}
	var out []LogEntry
	for !h.IsZero() && (n <= 0 || len(out) < n) {
		c, err := s.readCommit(h)
		if err != nil {
			return nil, fmt.Errorf("state ref %s: %w", s.ref, err)
		}
		out = append(out, LogEntry{
			Commit:  h.String(),
			Message: strings.TrimSuffix(c.Message, "\n"),
			Author:  c.Author.String(),
			When:    c.Author.When,
		})
		h = plumbing.ZeroHash
		if len(c.ParentHashes) > 0 {
			h = c.ParentHashes[0]
		}
	}
	return out, nil
}

// gitDescribe names a commit of the state ref in a message.
func gitDescribe(h plumbing.Hash) string {
	if h.IsZero() {
		return "(no state)"
	}
	return gitShort(h.String())
}

func gitShort(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
