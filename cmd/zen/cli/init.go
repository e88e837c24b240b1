package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/examples"
	"github.com/zen-dev/zen/internal/workspace"
	"github.com/zen-dev/zen/schema"
)

func newInit(g *globals) *cobra.Command {
	var ci, stack string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Scaffold a zen project: zen.cue, a pipeline's steps, and its data",
		Long: `Init writes the quickstart project into the current git repository (and
runs git init first if there is none, on the branch git's init.defaultBranch
names, else main): zen.cue with one pipeline (load → train → evaluate on
the Iris data set) and two stacks (local, and a commented-out registry
one), the steps' Python scripts, the data, and a .gitignore for zen's local
folder.

Existing files are never overwritten: init adds what is missing and says
what it kept. Lines missing from an existing .gitignore are appended.

With --ci github or --ci gitlab, init writes only a CI workflow instead,
for one stack: zen plan on every pull (merge) request, posted as a
comment, failing the check when the plan cannot be made; zen apply on
pushes to the repository's default branch, one at a time, pushing the
state ref back. The stack is --stack, else $ZEN_STACK, else the
repository's default_stack (a clone's zen stack use is not read: CI's
clone has none). It must work in a fresh clone on a runner that is thrown
away, so init refuses a stack without these, and says so:

  artifact_store: {flavor: "oci", repository: "registry.example.com/ml"}
  signer: {flavor: "cosign", key: {secret: "cosign_key"}, public_key: "cosign.pub"}

(signer: {flavor: "none"} is allowed too; the versions CI makes are then
unsigned, and the file says so). The file's head lists every secret it
needs: the registry's credentials, the signer's key and password, and
each secret the steps read.`,
		Example: `  mkdir demo && cd demo && zen init
  git add -A && git commit -m "zen init"
  zen plan && zen apply
  zen init --ci github --stack shared   # .github/workflows/zen.yml
  zen init --ci gitlab --stack shared   # .gitlab-ci.yml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			wd := g.workDir()
			if ci != "" {
				return scaffoldCI(g, wd, ci, stack)
			}
			if stack != "" {
				return errors.New("--stack is for --ci: it names the stack the CI workflow uses")
			}
			root := wd
			ws, err := workspace.Open(wd)
			switch {
			case errors.Is(err, workspace.ErrNotRepository):
				branch, err := gitInit(wd)
				if err != nil {
					return fmt.Errorf("git init: %w", err)
				}
				fmt.Fprintf(g.stdout, "initialized a git repository in %s (branch %s)\n", wd, branch)
			case err != nil:
				return err
			default:
				root = ws.Root
			}
			return scaffold(g, root)
		},
	}
	cmd.Flags().StringVar(&ci, "ci", "", "write a CI workflow for `SYSTEM` instead of the quickstart: github or gitlab")
	cmd.Flags().StringVar(&stack, "stack", "", "with --ci, the `NAME` of the stack CI plans and applies on (default: $ZEN_STACK, then default_stack)")
	return cmd
}

// gitInit makes a git repository in dir on the branch git's
// init.defaultBranch names, else main, and returns the branch.
func gitInit(dir string) (string, error) {
	branch := defaultBranch()
	_, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(branch)},
	})
	return branch, err
}

// defaultBranch is git's init.defaultBranch, as git config reads it (the
// global and system files, GIT_CONFIG_GLOBAL and includes); where git is
// not installed, as go-git reads the global and system files; else main.
func defaultBranch() string {
	valid := func(b string) bool {
		return b != "" && plumbing.NewBranchReferenceName(b).Validate() == nil
	}
	if out, err := exec.Command("git", "config", "--get", "init.defaultBranch").Output(); err == nil {
		if b := strings.TrimSpace(string(out)); valid(b) {
			return b
		}
	} else if errors.Is(err, exec.ErrNotFound) {
		scopes := []gitconfig.Scope{gitconfig.GlobalScope, gitconfig.SystemScope}
		if os.Getenv("GIT_CONFIG_NOSYSTEM") != "" {
			scopes = scopes[:1]
		}
		for _, scope := range scopes {
			if c, err := gitconfig.LoadConfig(scope); err == nil && valid(c.Init.DefaultBranch) {
				return c.Init.DefaultBranch
			}
		}
	}
	return "main"
}

// scaffoldCI writes the CI workflow of system for a stack into the
// repository around dir, unless a file is there already. It refuses a
// stack that cannot plan and apply in CI, and writes nothing then.
func scaffoldCI(g *globals, dir, system, stackFlag string) error {
	dest := examples.CIPath(system)
	if dest == "" {
		return fmt.Errorf("--ci %q: want %s", system, strings.Join(examples.CISystems, " or "))
	}
	ws, err := workspace.Open(dir)
	if errors.Is(err, workspace.ErrNotRepository) {
		return fmt.Errorf("zen init --ci writes a workflow for a zen repository, and %s is in no git repository: run zen init first", dir)
	}
	if err != nil {
		return err
	}
	// Loading caches the evaluated CUE in zen's folder, which ignores
	// itself: a refused stack leaves the work tree as it was.
	if err := ws.EnsureDataDir(); err != nil {
		return err
	}
	cfg, err := schema.Load(ws.Root)
	if err != nil {
		return err
	}
	name, from := stackFlag, "--stack"
	if name == "" {
		name, from = os.Getenv("ZEN_STACK"), "ZEN_STACK"
	}
	if name == "" {
		name, from = cfg.DefaultStack, "default_stack"
	}
	all := stacks(cfg)
	st, ok := all[name]
	if !ok {
		return fmt.Errorf("unknown stack %q (from %s); stacks: %s", name, from, strings.Join(slices.Sorted(maps.Keys(all)), ", "))
	}
	cs, err := examples.NewCIStack(system, cfg, st)
	if err != nil {
		return err
	}
	path := filepath.Join(ws.Root, filepath.FromSlash(dest))
	if _, err := os.Stat(path); err == nil {
		fmt.Fprintf(g.stdout, "kept    %s (exists)\n", dest)
		return nil
	}
	data, err := examples.RenderCI(system, cs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "created %s for stack %s\n", dest, st.Name)
	if !cs.Signed {
		fmt.Fprintf(g.stdout, "\nStack %s has signer none: the versions CI makes are UNSIGNED.\n", st.Name)
	} else if cs.PublicKey == "" {
		fmt.Fprintf(g.stderr, "note: stack %s declares no signer.public_key, so plans on pull requests, which have no private key, check no signatures of cached artifacts\n", st.Name)
	}
	var secrets []string
	for _, s := range cs.Secrets {
		secrets = append(secrets, s.Env)
	}
	where := "as repository secrets"
	if system == "gitlab" {
		where = "as CI/CD variables"
	}
	fmt.Fprintf(g.stdout, "\nAdd %s %s (its head says what each is), then commit it:\n  git add %s && git commit -m \"zen in CI\"\n", strings.Join(secrets, ", "), where, dest)
	return nil
}

// scaffold copies the quickstart into root without overwriting anything.
func scaffold(g *globals, root string) error {
	src := examples.Quickstart
	var created, kept []string
	err := fs.WalkDir(src, "quickstart", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "quickstart" {
			return err
		}
		rel := strings.TrimPrefix(p, "quickstart/")
		dest := filepath.Join(root, filepath.FromSlash(rel))
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
				created = append(created, rel+" (appended)")
				return nil
			}
			kept = append(kept, rel)
			return nil
		case err == nil:
			kept = append(kept, rel)
			return nil
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		mode := fs.FileMode(0o644)
		if strings.HasSuffix(rel, ".sh") {
			mode = 0o755
		}
		created = append(created, rel)
		return os.WriteFile(dest, data, mode)
	})
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	for _, c := range created {
		fmt.Fprintf(g.stdout, "created %s\n", c)
	}
	for _, k := range kept {
		fmt.Fprintf(g.stdout, "kept    %s (exists)\n", k)
	}
	fmt.Fprint(g.stdout, `
Next:
  git add -A && git commit -m "zen init"
  zen plan     # what would run, and why
  zen apply    # run it; the runs are recorded on refs/zen/state
`)
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
