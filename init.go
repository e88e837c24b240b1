package zen

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/zen-dev/zen/examples"
	"github.com/zen-dev/zen/internal/workspace"
	"github.com/zen-dev/zen/schema"
)

// Scaffolded is what Init did.
type Scaffolded struct {
	// Root is the work tree the quickstart went into.
	Root string
	// Branch is the branch of the git repository Init made; "" when dir
	// was in one already.
	Branch string
	// Created and Kept are the files written (".gitignore (appended)"
	// for lines added to one) and those left as they were, relative to
	// Root, slash-separated.
	Created, Kept []string
}

// Init writes the quickstart project (zen.cue, its steps and data, a
// .gitignore for zen's folder) into the git work tree around dir, never
// overwriting a file: lines missing from an existing .gitignore are
// appended. Outside a work tree it makes a git repository in dir first,
// on branch (main when ""). A Scaffolded is returned with an error once
// the repository is made.
func Init(dir, branch string) (*Scaffolded, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	done := &Scaffolded{Root: abs}
	ws, err := workspace.Open(abs)
	switch {
	case errors.Is(err, workspace.ErrNotRepository):
		if branch == "" {
			branch = "main"
		}
		if _, err := git.PlainInitWithOptions(abs, &git.PlainInitOptions{
			InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(branch)},
		}); err != nil {
			return nil, fmt.Errorf("git init: %w", err)
		}
		done.Branch = branch
	case err != nil:
		return nil, err
	default:
		done.Root = ws.Root
	}
	return done, scaffold(done)
}

// scaffold copies the quickstart into done.Root without overwriting
// anything.
func scaffold(done *Scaffolded) error {
	src := examples.Quickstart
	err := fs.WalkDir(src, "quickstart", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "quickstart" {
			return err
		}
		rel := strings.TrimPrefix(p, "quickstart/")
		dest := filepath.Join(done.Root, filepath.FromSlash(rel))
		if d.IsDir() {
			return os.MkdirAll(dest, 0o755)
		}
		data, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		existing, err := os.ReadFile(dest)
		switch {
		case err == nil && rel == ".gitignore":
			if add := missingLines(string(existing), string(data)); add != "" {
				if !strings.HasSuffix(string(existing), "\n") && len(existing) > 0 {
					add = "\n" + add
				}
				if err := os.WriteFile(dest, append(existing, add...), 0o644); err != nil {
					return err
				}
				done.Created = append(done.Created, rel+" (appended)")
				return nil
			}
			done.Kept = append(done.Kept, rel)
			return nil
		case err == nil:
			done.Kept = append(done.Kept, rel)
			return nil
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		mode := fs.FileMode(0o644)
		if strings.HasSuffix(rel, ".sh") {
			mode = 0o755
		}
		done.Created = append(done.Created, rel)
		return os.WriteFile(dest, data, mode)
	})
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	return nil
}

// missingLines returns the lines of want not in have, one per line.
func missingLines(have, want string) string {
	present := map[string]bool{}
	for _, l := range strings.Split(have, "\n") {
		present[strings.TrimSpace(l)] = true
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if t := strings.TrimSpace(l); t != "" && !present[t] {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// CIWorkflow is what InitCI did.
type CIWorkflow struct {
	// Path is the workflow's path in the work tree, slash-separated.
	Path string
	// Kept says that a file was there already and was left as it was.
	Kept bool
	// Stack is the stack the workflow plans and applies on, as CI sees
	// it.
	Stack *examples.CIStack
}

// InitCI writes the CI workflow of system (github or gitlab) into the
// zen repository around dir, for the stack named by stack, else
// envStack (the zen command's ZEN_STACK), else the repository's
// default_stack; a clone's `zen stack use` is not read, as CI's clone
// has none. It refuses a stack that cannot plan and apply in CI, and
// writes nothing then; a workflow file already there is kept.
func InitCI(dir, system, stack, envStack string) (*CIWorkflow, error) {
	dest := examples.CIPath(system)
	if dest == "" {
		return nil, fmt.Errorf("--ci %q: want %s", system, strings.Join(examples.CISystems, " or "))
	}
	ws, err := workspace.Open(dir)
	if errors.Is(err, workspace.ErrNotRepository) {
		return nil, fmt.Errorf("zen init --ci writes a workflow for a zen repository, and %s is in no git repository: run zen init first", dir)
	}
	if err != nil {
		return nil, err
	}
	// Loading caches the evaluated CUE in zen's folder, which ignores
	// itself: a refused stack leaves the work tree as it was.
	if err := ws.EnsureDataDir(); err != nil {
		return nil, err
	}
	cfg, err := schema.Load(ws.Root)
	if err != nil {
		return nil, err
	}
	// Not the clone's zen stack use: CI's clone has none.
	st, err := pickStack(cfg, choice{stack, "--stack"}, choice{envStack, "ZEN_STACK"})
	if err != nil {
		return nil, err
	}
	cs, err := examples.NewCIStack(system, cfg, st)
	if err != nil {
		return nil, err
	}
	wf := &CIWorkflow{Path: dest, Stack: cs}
	path := filepath.Join(ws.Root, filepath.FromSlash(dest))
	if _, err := os.Stat(path); err == nil {
		wf.Kept = true
		return wf, nil
	}
	data, err := examples.RenderCI(system, cs)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return nil, err
	}
	return wf, nil
}
