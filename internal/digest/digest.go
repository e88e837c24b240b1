// Package digest computes content digests of files and folders, streaming
// them, with a stat cache so that an unchanged file is not read again.
package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
)

// Hasher computes sha256 digests ("sha256:<hex>"). It is safe for
// concurrent use.
type Hasher struct {
	path  string // where the stat cache is kept; "" for none
	mu    sync.Mutex
	cache map[string]entry
	dirty bool
}

type entry struct {
	Size   int64  `json:"s"`
	MTime  int64  `json:"m"`
	Inode  uint64 `json:"i"`
	Digest string `json:"d"`
}

// New returns a Hasher whose stat cache is kept in the file at path ("" for
// none). A missing or unreadable cache file is an empty cache.
func New(path string) *Hasher {
	h := &Hasher{path: path, cache: map[string]entry{}}
	if path != "" {
		if data, err := os.ReadFile(path); err == nil {
			_ = json.Unmarshal(data, &h.cache)
		}
	}
	return h
}

// Save writes the stat cache back if it changed.
func (h *Hasher) Save() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.path == "" || !h.dirty {
		return nil
	}
	data, err := json.Marshal(h.cache)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(h.path), 0o755); err != nil {
		return err
	}
	tmp := h.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	h.dirty = false
	return os.Rename(tmp, h.path)
}

// File returns the digest of the regular file at path (absolute).
func (h *Hasher) File(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", path)
	}
	st := statOf(fi)
	h.mu.Lock()
	e, ok := h.cache[path]
	h.mu.Unlock()
	if ok && e.Size == st.Size && e.MTime == st.MTime && e.Inode == st.Inode && e.Digest != "" {
		return e.Digest, nil
	}
	d, err := hashFile(path)
	if err != nil {
		return "", err
	}
	st.Digest = d
	h.mu.Lock()
	h.cache[path] = st
	h.dirty = true
	h.mu.Unlock()
	return d, nil
}

// Dir returns a digest of the folder at path: of every file's relative
// path, executable bit and content digest, and every symlink's target, in
// sorted order. Empty folders count too. A folder that is a symlink is
// the folder it leads to; a symlink in it must stay in it, as in a folder
// a step outputs: its target's content is not in the digest.
func (h *Hasher) Dir(root string) (string, error) {
	if real, err := filepath.EvalSymlinks(root); err == nil {
		root = real
	}
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			lines = append(lines, "d "+rel)
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			// A dangling link is judged by its text.
			to, err := filepath.EvalSymlinks(p)
			if err != nil {
				to = filepath.Join(filepath.Dir(p), t)
				if filepath.IsAbs(t) {
					to = t
				}
			}
			if r, err := filepath.Rel(root, to); err != nil || !filepath.IsLocal(r) {
				return fmt.Errorf("link %s leads outside the folder (to %s)", rel, t)
			}
			lines = append(lines, "l "+rel+" "+t)
		case d.Type().IsRegular():
			fd, err := h.File(p)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			kind := "f"
			if info.Mode()&0o111 != 0 {
				kind = "x"
			}
			lines = append(lines, kind+" "+rel+" "+fd)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(lines)
	s := sha256.New()
	for _, l := range lines {
		io.WriteString(s, l)
		s.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(s.Sum(nil)), nil
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := sha256.New()
	if _, err := io.Copy(s, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(s.Sum(nil)), nil
}

func statOf(fi os.FileInfo) entry {
	e := entry{Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.Inode = st.Ino
	}
	return e
}

// Bytes returns the digest of b.
func Bytes(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}
