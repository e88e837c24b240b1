package state

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zen-dev/zen/internal/failpoint"

	"github.com/go-git/go-git/v5/plumbing"
	formatcfg "github.com/go-git/go-git/v5/plumbing/format/config"
	"github.com/go-git/go-git/v5/plumbing/object"
)

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
