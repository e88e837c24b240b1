package state

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

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
	return sn.walk(dir, func(p string, _ object.TreeEntry) error { return fn(p) })
}

// walk is Walk, giving fn each file's tree entry too: its blob's hash
// reads the file without looking its path up again.
func (sn *Snapshot) walk(dir string, fn func(path string, e object.TreeEntry) error) error {
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
				err = fn(p, e)
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
