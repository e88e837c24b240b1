package state

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

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
