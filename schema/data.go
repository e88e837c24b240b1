package schema

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// DataRef is how a data input names what zen data push stored:
// NAME@sha256:<hex>, the name it was pushed under and its manifest digest.
func DataRef(name, digest string) string { return name + "@" + digest }

// ParseDataRef splits a data input's NAME@sha256:<hex> into the name and
// the digest, each checked: the name by the name rule, the digest as a
// full sha256 digest (a tag or a short digest would not pin the bytes).
func ParseDataRef(ref string) (name, digest string, err error) {
	name, digest, ok := strings.Cut(ref, "@")
	if !ok {
		return "", "", fmt.Errorf("data %q: want NAME@sha256:<64 hex digits>, as zen data push prints it", ref)
	}
	if err := CheckName("data", name); err != nil {
		return "", "", err
	}
	if !ValidDigest(digest) {
		return "", "", fmt.Errorf("data %q: %q is not a sha256 digest (want sha256:<64 hex digits>, as zen data push prints it)", ref, digest)
	}
	return name, digest, nil
}

// ValidDigest reports whether d is sha256:<64 lowercase hex digits>.
func ValidDigest(d string) bool {
	hex, ok := strings.CutPrefix(d, "sha256:")
	return ok && len(hex) == 64 && strings.Trim(hex, "0123456789abcdef") == ""
}

// gitIgnores reports whether git ignores the repository path p (slash-
// separated, relative to the root): whether `git add` would leave it out.
// It reads the files git does for p: .git/info/exclude, the global
// excludes file, and the .gitignore of the root and of each folder on the
// way to p. Outside a git work tree nothing is ignored.
func (l *loader) gitIgnores(p string) bool {
	if _, err := os.Lstat(filepath.Join(l.root, ".git")); err != nil {
		return false
	}
	var ps []gitignore.Pattern
	if global, err := gitignore.LoadGlobalPatterns(osfs.New("/")); err == nil {
		ps = append(ps, global...)
	}
	read := func(file string, domain []string) {
		b, err := os.ReadFile(file)
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimRight(line, "\r")
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			ps = append(ps, gitignore.ParsePattern(line, domain))
		}
	}
	read(filepath.Join(l.root, ".git", "info", "exclude"), nil)
	parts := strings.Split(p, "/")
	for i := range parts {
		read(filepath.Join(l.root, filepath.FromSlash(strings.Join(parts[:i], "/")), ".gitignore"), parts[:i])
	}
	fi, err := os.Stat(filepath.Join(l.root, filepath.FromSlash(p)))
	return gitignore.NewMatcher(ps).Match(parts, err == nil && fi.IsDir())
}
