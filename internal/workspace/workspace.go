// Package workspace is the git work tree zen runs in: its root, the commit
// it is at, its uncommitted changes, and the digests of its files.
package workspace

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/zen-dev/zen/internal/digest"
	"github.com/zen-dev/zen/schema"
)

// ErrNotRepository is returned for a directory outside any git work tree.
var ErrNotRepository = errors.New("not a git repository")

// DataDir is zen's folder in a work tree for local, untracked files: the
// default artifact store and the stat cache. zen never counts it as a change.
const DataDir = ".zen"

// Workspace is a git work tree.
type Workspace struct {
	Root   string // absolute path of the work tree's top
	Repo   *git.Repository
	Hasher *digest.Hasher

	mu   sync.Mutex
	exes map[string]string // Executable's answers, which do not change while zen runs
}

// Open finds the work tree containing dir.
func Open(dir string) (*Workspace, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	repo, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("%w (or any parent): %s; run `git init` first", ErrNotRepository, abs)
	}
	if err != nil {
		return nil, fmt.Errorf("open git repository at %s: %w", abs, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, fmt.Errorf("%s: a zen repository needs a work tree: %w", abs, err)
	}
	root := wt.Filesystem.Root()
	return &Workspace{
		Root:   root,
		Repo:   repo,
		Hasher: digest.New(filepath.Join(root, DataDir, "statcache.json")),
	}, nil
}

// EnsureDataDir creates zen's folder with a .gitignore that ignores the
// folder itself, so that its caches and local store never show up in git
// status, whatever the repository's own .gitignore says.
func (w *Workspace) EnsureDataDir() error {
	dir := filepath.Join(w.Root, DataDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p := filepath.Join(dir, ".gitignore")
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return os.WriteFile(p, []byte("# zen's local caches and artifact store\n*\n"), 0o644)
}

// Head returns the commit HEAD points at, or "" before the first commit.
func (w *Workspace) Head() (string, error) {
	ref, err := w.Repo.Head()
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read HEAD: %w", err)
	}
	return ref.Hash().String(), nil
}

// Changes lists the uncommitted changes of the work tree (ignored files and
// zen's own folder left out), and a digest that identifies them: of each
// changed path with its status and current content.
func (w *Workspace) Changes() (paths []string, id string, err error) {
	wt, err := w.Repo.Worktree()
	if err != nil {
		return nil, "", err
	}
	st, err := wt.Status()
	if err != nil {
		return nil, "", fmt.Errorf("git status: %w", err)
	}
	var lines []string
	for p, s := range st {
		if s.Staging == git.Unmodified && s.Worktree == git.Unmodified {
			continue
		}
		if p == DataDir || strings.HasPrefix(p, DataDir+"/") {
			continue
		}
		paths = append(paths, p)
		d := "deleted"
		if fd, err := w.Hasher.File(filepath.Join(w.Root, filepath.FromSlash(p))); err == nil {
			d = fd
		}
		lines = append(lines, fmt.Sprintf("%c%c %s %s", s.Staging, s.Worktree, p, d))
	}
	if len(paths) == 0 {
		return nil, "", nil
	}
	sort.Strings(paths)
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l + "\n"))
	}
	return paths, "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// realRoot is the root with its symlinks resolved.
func (w *Workspace) realRoot() string {
	if r, err := filepath.EvalSymlinks(w.Root); err == nil {
		return r
	}
	return w.Root
}

// abs turns a slash-separated repository path into an absolute one.
func (w *Workspace) abs(p string) string { return filepath.Join(w.Root, filepath.FromSlash(p)) }

// File returns the digest of a repository file.
func (w *Workspace) File(p string) (string, error) {
	d, err := w.Hasher.File(w.abs(p))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: no such file", p)
	}
	return d, err
}

// Dir returns the digest of a repository folder.
func (w *Workspace) Dir(p string) (string, error) {
	d, err := w.Hasher.Dir(w.abs(p))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%s: no such directory", p)
	case err != nil:
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return d, nil
}

// Code returns the digests of a step's code files: the repository files its
// command names and the files its code: globs match.
func (w *Workspace) Code(s *schema.Step) (map[string]string, error) {
	code := map[string]string{}
	for _, arg := range s.Run {
		p := filepath.ToSlash(filepath.Clean(arg))
		if arg == "" || strings.HasPrefix(arg, "-") || filepath.IsAbs(arg) || strings.HasPrefix(p, "../") {
			continue
		}
		if fi, err := os.Stat(w.abs(p)); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		d, err := w.File(p)
		if err != nil {
			return nil, err
		}
		code[p] = d
	}
	fsys := os.DirFS(w.Root)
	for _, pattern := range s.Code {
		matches, err := doublestar.Glob(fsys, pattern, doublestar.WithFilesOnly())
		if err != nil {
			return nil, fmt.Errorf("code: %q: %w", pattern, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("code: %q matches no file", pattern)
		}
		for _, m := range matches {
			if m == DataDir || strings.HasPrefix(m, DataDir+"/") {
				continue
			}
			// A match reached through a symlink (a ** that went down a
			// linked folder) must still be the repository's.
			if real, err := filepath.EvalSymlinks(w.abs(m)); err == nil {
				if rel, err := filepath.Rel(w.realRoot(), real); err != nil || !filepath.IsLocal(rel) {
					return nil, fmt.Errorf("code: %q matches %s, which links outside the repository (to %s)", pattern, m, real)
				}
			}
			d, err := w.File(m)
			if err != nil {
				return nil, err
			}
			code[m] = d
		}
	}
	return code, nil
}

// Executable identifies the program name runs when it is looked up on
// PATH: its name and the digest of the file it resolves to. A name with a
// slash is a path: a repository file (Code covers it) or an absolute one.
func (w *Workspace) Executable(name string) (string, error) {
	if strings.Contains(name, "/") && !filepath.IsAbs(name) {
		return "", nil
	}
	w.mu.Lock()
	id, ok := w.exes[name]
	w.mu.Unlock()
	if ok {
		return id, nil
	}
	id, err := w.executable(name)
	if err == nil {
		w.mu.Lock()
		if w.exes == nil {
			w.exes = map[string]string{}
		}
		w.exes[name] = id
		w.mu.Unlock()
	}
	return id, err
}

func (w *Workspace) executable(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("command %q: not found on PATH", name)
	}
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	d, err := w.Hasher.File(p)
	if err != nil {
		return "", fmt.Errorf("command %q: %w", name, err)
	}
	return filepath.Base(name) + " " + d, nil
}

// Snapshot copies the files a run is made from into dest, a new folder:
// the tracked files as they are in the work tree, and the untracked ones
// git does not ignore; zen's own folder never. A step on another machine
// runs from it.
func (w *Workspace) Snapshot(dest string) error {
	cmd := exec.Command("git", "-C", w.Root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("git ls-files: %w", err)
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if rel == "" || rel == DataDir || strings.HasPrefix(rel, DataDir+"/") {
			continue
		}
		src, dst := w.abs(rel), filepath.Join(dest, filepath.FromSlash(rel))
		fi, err := os.Lstat(src)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the work tree
		}
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				return err
			}
			resolved := target
			if !filepath.IsAbs(resolved) {
				resolved = filepath.Join(filepath.Dir(src), target)
			}
			if r, err := filepath.Rel(w.Root, resolved); err != nil || !filepath.IsLocal(r) {
				return fmt.Errorf("%s links outside the repository (to %s): another machine would not have it; commit the files, or read them as an artifact", rel, target)
			}
			if err := os.Symlink(target, dst); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if err := copyFile(src, dst, fi.Mode().Perm()); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyFile copies src to dst, streaming.
func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
