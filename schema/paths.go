package schema

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"cuelang.org/go/cue/build"
	"github.com/bmatcuk/doublestar/v4"
)

// checkCode checks a code: glob: its syntax, that it stays in the
// repository, and that it matches a file (outside zen's own folder), so
// that a typo cannot leave code out of the cache key.
func (l *loader) checkCode(g string) string {
	if !doublestar.ValidatePattern(g) {
		return fmt.Sprintf("%q: syntax error in pattern", g)
	}
	if strings.HasPrefix(g, "/") {
		return fmt.Sprintf("%s: path must be relative to the repository root", g)
	}
	if slices.Contains(strings.Split(g, "/"), "..") {
		return fmt.Sprintf("%s: path leaves the repository", g)
	}
	// The part before the first wildcard, as an input path is.
	if prefix, _ := doublestar.SplitPattern(g); prefix != "." {
		if real, err := filepath.EvalSymlinks(filepath.Join(l.root, filepath.FromSlash(prefix))); err == nil {
			if rel, err := filepath.Rel(l.realRoot(), real); err != nil || !filepath.IsLocal(rel) {
				return fmt.Sprintf("%s: %s links outside the repository (to %s)", g, prefix, real)
			}
		}
	}
	found := false
	_ = doublestar.GlobWalk(os.DirFS(l.root), g, func(p string, d fs.DirEntry) error {
		if p == ".zen" || strings.HasPrefix(p, ".zen/") {
			return nil
		}
		found = true
		return fs.SkipAll
	}, doublestar.WithFilesOnly())
	if !found {
		return fmt.Sprintf("%q matches no file", g)
	}
	return ""
}

// checkUTF8 reports, for each CUE file that is not UTF-8, where its first
// bad byte is: CUE takes such bytes in strings as they are, and the JSON
// zen decodes would turn them into U+FFFD without a word.
func (l *loader) checkUTF8(files []*build.File) Errors {
	var errs Errors
	for _, f := range files {
		b, err := os.ReadFile(f.Filename)
		if err != nil || utf8.Valid(b) {
			continue
		}
		pos := Pos{File: f.Filename, Line: 1, Col: 1}
		if rel, err := filepath.Rel(l.root, f.Filename); err == nil && !strings.HasPrefix(rel, "..") {
			pos.File = filepath.ToSlash(rel)
		}
		for i := 0; i < len(b); {
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				errs = append(errs, &Error{Pos: pos, Msg: fmt.Sprintf("invalid UTF-8 (byte %#x): CUE files are UTF-8", b[i])})
				break
			}
			if b[i] == '\n' {
				pos.Line, pos.Col = pos.Line+1, 1
			} else {
				pos.Col += n
			}
			i += n
		}
	}
	return errs
}

// checkRepoPath checks an input path: relative, inside the repository,
// present, and a file or a folder as declared.
func (l *loader) checkRepoPath(p string, dir bool) string {
	if msg := checkRel(p); msg != "" {
		return msg
	}
	abs := filepath.Join(l.root, filepath.FromSlash(p))
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("%s: no such file or directory", p)
	case err != nil:
		return err.Error()
	case dir && !fi.IsDir():
		return fmt.Sprintf("%s is not a directory (use file: for a file)", p)
	case !dir && fi.IsDir():
		return fmt.Sprintf("%s is a directory (use dir: for a directory)", p)
	}
	// A symlink on the way (data/passwd -> /etc/passwd) must not lead out
	// of the repository either: what a step reads is the repository's.
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return err.Error()
	}
	if rel, err := filepath.Rel(l.realRoot(), real); err != nil || !filepath.IsLocal(rel) {
		return fmt.Sprintf("%s links outside the repository (to %s)", p, real)
	}
	return ""
}

// realRoot is the repository's root with its symlinks resolved.
func (l *loader) realRoot() string {
	if l.resolvedRoot == "" {
		l.resolvedRoot = l.root
		if r, err := filepath.EvalSymlinks(l.root); err == nil {
			l.resolvedRoot = r
		}
	}
	return l.resolvedRoot
}

// checkRel reports why p is not a clean relative path inside the
// repository, or "".
func checkRel(p string) string {
	switch {
	case p == "":
		return ""
	case strings.ContainsRune(p, 0):
		return fmt.Sprintf("%q: a path cannot hold a NUL byte", p)
	case strings.HasPrefix(p, "/") || filepath.IsAbs(p):
		return fmt.Sprintf("%s: path must be relative to the repository root", p)
	case p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/.."):
		return fmt.Sprintf("%s: path leaves the repository", p)
	}
	return ""
}
