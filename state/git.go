// Package state is zen's record of what it did: commits on a git ref
// (refs/zen/state) holding JSON records, written without touching the work
// tree or the index, and moved with compare-and-swap.
package state

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// DefaultRef is the ref zen records on.
const DefaultRef = "refs/zen/state"

// ErrStateMoved is returned when the state ref moved since a plan was made
// and the change overlaps with what moved it.
var ErrStateMoved = errors.New("state moved, plan again")

// ErrNotRepository is returned for a directory outside any git repository.
var ErrNotRepository = errors.New("not a git repository")

// LockTimeout is how long Commit waits for another writer's lock.
var LockTimeout = 10 * time.Second

// Store is the state ref of one repository.
type Store struct {
	repo      *git.Repository
	ref       plumbing.ReferenceName
	commonDir string // where refs live (the main .git of linked worktrees)
	objDir    string
}

// Open opens the state ref named ref of the git repository containing dir.
func Open(dir, ref string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	repo, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("%w (or any parent): %s", ErrNotRepository, abs)
	}
	if err != nil {
		return nil, fmt.Errorf("open git repository at %s: %w", abs, err)
	}
	name := plumbing.ReferenceName(ref)
	if !strings.HasPrefix(ref, "refs/") || name.Validate() != nil {
		return nil, fmt.Errorf("state ref %q: not a valid ref name under refs/", ref)
	}
	fs, ok := repo.Storer.(*filesystem.Storage)
	if !ok {
		return nil, fmt.Errorf("open git repository at %s: unsupported storage", abs)
	}
	gitDir := fs.Filesystem().Root()
	common := gitDir
	if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		c := strings.TrimSpace(string(b))
		if !filepath.IsAbs(c) {
			c = filepath.Join(gitDir, c)
		}
		common = filepath.Clean(c)
	}
	return &Store{repo: repo, ref: name, commonDir: common, objDir: filepath.Join(common, "objects")}, nil
}

// Ref returns the ref's name.
func (s *Store) Ref() string { return string(s.ref) }

// current returns the commit the ref points at, or the zero hash.
func (s *Store) current() (plumbing.Hash, error) {
	r, err := s.repo.Storer.Reference(s.ref)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("state ref %s: %w", s.ref, err)
	}
	return r.Hash(), nil
}

// Head returns a read-only snapshot of the ref's commit; a missing ref is
// an empty snapshot.
func (s *Store) Head() (*Snapshot, error) {
	h, err := s.current()
	if err != nil {
		return nil, err
	}
	return s.snapshot(h)
}

func (s *Store) snapshot(h plumbing.Hash) (*Snapshot, error) {
	if h.IsZero() {
		return &Snapshot{}, nil
	}
	c, err := object.GetCommit(s.repo.Storer, h)
	if err != nil {
		return nil, fmt.Errorf("state ref %s: commit %s: %w", s.ref, h, err)
	}
	t, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("state ref %s: commit %s: tree: %w", s.ref, h, err)
	}
	return &Snapshot{commit: h, tree: t}, nil
}

// Snapshot is the state at one commit of the ref.
type Snapshot struct {
	commit plumbing.Hash
	tree   *object.Tree // nil for the empty state
}

// Commit returns the snapshot's commit hash, or "" for the empty state.
func (sn *Snapshot) Commit() string {
	if sn.tree == nil {
		return ""
	}
	return sn.commit.String()
}

// Read returns the content of the file at p; ok is false when absent. It
// reads only the trees on the way to p.
func (sn *Snapshot) Read(p string) ([]byte, bool, error) {
	if sn.tree == nil {
		return nil, false, nil
	}
	f, err := sn.tree.File(p)
	if errors.Is(err, object.ErrFileNotFound) || errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrEntryNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state %s: %s: %w", short(sn.Commit()), p, err)
	}
	r, err := f.Reader()
	if err != nil {
		return nil, false, fmt.Errorf("state %s: %s: %w", short(sn.Commit()), p, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, false, fmt.Errorf("state %s: %s: %w", short(sn.Commit()), p, err)
	}
	return b, true, nil
}

// subtree returns the tree at dir, or nil when there is none.
func (sn *Snapshot) subtree(dir string) (*object.Tree, error) {
	if sn.tree == nil {
		return nil, nil
	}
	if dir == "" || dir == "." {
		return sn.tree, nil
	}
	t, err := sn.tree.Tree(dir)
	if errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrEntryNotFound) {
		return nil, nil
	}
	return t, err
}

// List returns the sorted names of the entries directly under dir ("" is
// the root).
func (sn *Snapshot) List(dir string) ([]string, error) {
	t, err := sn.subtree(dir)
	if t == nil || err != nil {
		return nil, err
	}
	names := make([]string, len(t.Entries))
	for i, e := range t.Entries {
		names[i] = e.Name
	}
	sort.Strings(names)
	return names, nil
}

// Walk calls fn with the path of every file under dir, in sorted order.
func (sn *Snapshot) Walk(dir string, fn func(p string) error) error {
	t, err := sn.subtree(dir)
	if t == nil || err != nil {
		return err
	}
	var walk func(prefix string, t *object.Tree) error
	walk = func(prefix string, t *object.Tree) error {
		entries := append([]object.TreeEntry(nil), t.Entries...)
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
		for _, e := range entries {
			p := path.Join(prefix, e.Name)
			if e.Mode == filemode.Dir {
				st, err := t.Tree(e.Name)
				if err != nil {
					return err
				}
				if err := walk(p, st); err != nil {
					return err
				}
				continue
			}
			if err := fn(p); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(dir, t)
}

// Change is one commit's worth of writes.
type Change struct {
	// Files maps slash-separated paths to their new content.
	Files map[string][]byte
	// Guard lists paths that must not differ between the base and the
	// current ref for the change to be replayed on a moved ref.
	Guard   []string
	Message string
	// Author defaults to the repository's user.name and user.email.
	Author Signature
}

// Signature names who made a commit, and when.
type Signature struct {
	Name, Email string
	When        time.Time
}

// Commit writes ch on top of base (a commit hash, "" for no state yet) and
// moves the ref with compare-and-swap. When the ref moved away from base
// and none of ch.Guard differs between base and the ref, ch is replayed on
// top of the ref's commit: records are independent files. Otherwise the
// error wraps ErrStateMoved. It returns the new commit's hash.
func (s *Store) Commit(base string, ch Change) (string, error) {
	baseHash := plumbing.NewHash(base)
	if base == "" {
		baseHash = plumbing.ZeroHash
	}
	author := s.author(ch.Author)
	for attempt := 0; ; attempt++ {
		cur, err := s.current()
		if err != nil {
			return "", err
		}
		if cur != baseHash {
			if err := s.checkGuard(baseHash, cur, ch.Guard); err != nil {
				return "", err
			}
		}
		var parentTree *object.Tree
		var parents []plumbing.Hash
		if !cur.IsZero() {
			sn, err := s.snapshot(cur)
			if err != nil {
				return "", err
			}
			parentTree, parents = sn.tree, []plumbing.Hash{cur}
		}
		w := &writer{s: s}
		treeHash, err := w.tree(parentTree, ch.Files)
		if err != nil {
			return "", fmt.Errorf("state ref %s: write tree: %w", s.ref, err)
		}
		c := &object.Commit{Author: author, Committer: author, Message: ch.Message, TreeHash: treeHash, ParentHashes: parents}
		commitHash, err := w.encode(c)
		if err != nil {
			return "", fmt.Errorf("state ref %s: write commit: %w", s.ref, err)
		}
		if err := w.sync(); err != nil {
			return "", fmt.Errorf("state ref %s: sync objects: %w", s.ref, err)
		}
		err = s.swap(cur, commitHash)
		if err == nil {
			return commitHash.String(), nil
		}
		if !errors.Is(err, errRaced) || attempt >= 20 {
			return "", err
		}
	}
}

// checkGuard fails with ErrStateMoved when a guarded path differs between
// the base and the current commit.
func (s *Store) checkGuard(base, cur plumbing.Hash, guard []string) error {
	if len(guard) == 0 {
		return nil
	}
	from, err := s.snapshot(base)
	if err != nil {
		return err
	}
	to, err := s.snapshot(cur)
	if err != nil {
		return err
	}
	for _, p := range guard {
		a, aok, err := entryHash(from, p)
		if err != nil {
			return err
		}
		b, bok, err := entryHash(to, p)
		if err != nil {
			return err
		}
		if a != b || aok != bok {
			return fmt.Errorf("%w: %s changed on %s (%s → %s) since this plan was made", ErrStateMoved, p, s.ref, short(from.Commit()), short(to.Commit()))
		}
	}
	return nil
}

func entryHash(sn *Snapshot, p string) (plumbing.Hash, bool, error) {
	if sn.tree == nil {
		return plumbing.ZeroHash, false, nil
	}
	e, err := sn.tree.FindEntry(p)
	if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrFileNotFound) {
		return plumbing.ZeroHash, false, nil
	}
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	return e.Hash, true, nil
}

// author fills in a signature the way git does: GIT_AUTHOR_* variables,
// then the repository's and the user's config, then zen's own.
func (s *Store) author(a Signature) object.Signature {
	if a.Name == "" {
		a.Name = os.Getenv("GIT_AUTHOR_NAME")
	}
	if a.Email == "" {
		a.Email = os.Getenv("GIT_AUTHOR_EMAIL")
	}
	if a.Name == "" || a.Email == "" {
		if cfg, err := s.repo.ConfigScoped(config.SystemScope); err == nil {
			if a.Name == "" {
				a.Name = cfg.User.Name
			}
			if a.Email == "" {
				a.Email = cfg.User.Email
			}
		}
	}
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

// errRaced: the ref moved between reading it and locking it.
var errRaced = errors.New("state ref moved while committing")

// swap moves the ref from old to new the way git does: take <ref>.lock
// with O_EXCL, check the old value, write and fsync the new one, rename
// the lock over the ref. C git honours the same lock.
func (s *Store) swap(old, new plumbing.Hash) error {
	refPath := filepath.Join(s.commonDir, filepath.FromSlash(string(s.ref)))
	lock := refPath + ".lock"
	if err := os.MkdirAll(filepath.Dir(refPath), 0o755); err != nil {
		return err
	}
	deadline := time.Now().Add(LockTimeout)
	var f *os.File
	for {
		var err error
		f, err = os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("state ref %s: lock: %w", s.ref, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("state ref %s is locked by %s: another zen apply is recording; if none is running, remove that file", s.ref, lock)
		}
		time.Sleep(20 * time.Millisecond)
	}
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			os.Remove(lock)
		}
	}()
	cur, err := s.current()
	if err != nil {
		return err
	}
	if cur != old {
		return errRaced
	}
	if _, err := f.WriteString(new.String() + "\n"); err != nil {
		return fmt.Errorf("state ref %s: %w", s.ref, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("state ref %s: %w", s.ref, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("state ref %s: %w", s.ref, err)
	}
	if err := os.Rename(lock, refPath); err != nil {
		return fmt.Errorf("state ref %s: %w", s.ref, err)
	}
	renamed = true
	return syncDir(filepath.Dir(refPath))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// writer writes objects and remembers them, to fsync before the ref moves.
type writer struct {
	s       *Store
	written []plumbing.Hash
}

type encoder interface {
	Encode(plumbing.EncodedObject) error
}

func (w *writer) encode(o encoder) (plumbing.Hash, error) {
	obj := w.s.repo.Storer.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return w.store(obj)
}

func (w *writer) store(obj plumbing.EncodedObject) (plumbing.Hash, error) {
	if w.s.repo.Storer.HasEncodedObject(obj.Hash()) == nil {
		return obj.Hash(), nil
	}
	h, err := w.s.repo.Storer.SetEncodedObject(obj)
	if err == nil {
		w.written = append(w.written, h)
	}
	return h, err
}

func (w *writer) blob(data []byte) (plumbing.Hash, error) {
	obj := w.s.repo.Storer.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	wr, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := wr.Write(data); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := wr.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return w.store(obj)
}

// tree writes base with files written over it, rewriting only the trees on
// the changed paths; unchanged subtrees keep their hashes.
func (w *writer) tree(base *object.Tree, files map[string][]byte) (plumbing.Hash, error) {
	here := map[string][]byte{}
	sub := map[string]map[string][]byte{}
	for p, data := range files {
		first, rest, nested := strings.Cut(p, "/")
		if !nested {
			here[first] = data
			continue
		}
		if sub[first] == nil {
			sub[first] = map[string][]byte{}
		}
		sub[first][rest] = data
	}
	entries := map[string]object.TreeEntry{}
	if base != nil {
		for _, e := range base.Entries {
			entries[e.Name] = e
		}
	}
	for name, data := range here {
		h, err := w.blob(data)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries[name] = object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: h}
	}
	for name, files := range sub {
		var child *object.Tree
		if e, ok := entries[name]; ok && e.Mode == filemode.Dir {
			t, err := object.GetTree(w.s.repo.Storer, e.Hash)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			child = t
		}
		h, err := w.tree(child, files)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
	}
	t := &object.Tree{}
	for _, e := range entries {
		t.Entries = append(t.Entries, e)
	}
	// git orders a tree's entries by name, a folder's name with "/" after it.
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(t.Entries, func(i, j int) bool { return key(t.Entries[i]) < key(t.Entries[j]) })
	return w.encode(t)
}

// sync flushes the loose objects written to disk, so that the ref never
// points at objects a crash could lose.
func (w *writer) sync() error {
	dirs := map[string]bool{}
	for _, h := range w.written {
		hex := h.String()
		p := filepath.Join(w.s.objDir, hex[:2], hex[2:])
		f, err := os.Open(p)
		if err != nil {
			continue // packed or elsewhere: not ours to sync
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
		dirs[filepath.Dir(p)] = true
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// LogEntry is one commit of the state ref.
type LogEntry struct {
	Commit  string    `json:"commit"`
	Message string    `json:"message"`
	Author  string    `json:"author"`
	When    time.Time `json:"when"`
}

// Log lists the ref's commits, newest first, up to n (0: all).
func (s *Store) Log(n int) ([]LogEntry, error) {
	h, err := s.current()
	if err != nil || h.IsZero() {
		return nil, err
	}
	var out []LogEntry
	for !h.IsZero() && (n <= 0 || len(out) < n) {
		c, err := object.GetCommit(s.repo.Storer, h)
		if err != nil {
			return nil, fmt.Errorf("state ref %s: commit %s: %w", s.ref, h, err)
		}
		out = append(out, LogEntry{Commit: h.String(), Message: c.Message, Author: c.Author.Name + " <" + c.Author.Email + ">", When: c.Author.When})
		h = plumbing.ZeroHash
		if len(c.ParentHashes) > 0 {
			h = c.ParentHashes[0]
		}
	}
	return out, nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
