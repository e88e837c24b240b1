package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/examples"
	"github.com/zen-dev/zen/internal/workspace"
)

func newInit(g *globals) *cobra.Command {
	var ci string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Scaffold a zen project: zen.cue, a pipeline's steps, and its data",
		Long: `Init writes the quickstart project into the current git repository (and
runs git init first if there is none): zen.cue with one pipeline (load →
train → evaluate on the Iris data set) and two stacks (local, and a
commented-out registry one), the steps' Python scripts, the data, and a
.gitignore for zen's local folder.

Existing files are never overwritten: init adds what is missing and says
what it kept. Lines missing from an existing .gitignore are appended.

With --ci github or --ci gitlab, init writes only a CI workflow instead:
zen plan on every pull (merge) request, posted as a comment, failing the
check when the plan cannot be made; zen apply on the main branch, one at a
time, pushing the state ref back. The file says which secrets to add.`,
		Example: `  mkdir demo && cd demo && zen init
  git add -A && git commit -m "zen init"
  zen plan && zen apply
  zen init --ci github     # .github/workflows/zen.yml
  zen init --ci gitlab     # .gitlab-ci.yml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			wd, err := os.Getwd()
			if err != nil {
				return err
			}
			root := wd
			ws, err := workspace.Open(wd)
			switch {
			case errors.Is(err, workspace.ErrNotRepository):
				if _, err := git.PlainInit(wd, false); err != nil {
					return fmt.Errorf("git init: %w", err)
				}
				fmt.Fprintf(g.stdout, "initialized a git repository in %s\n", wd)
			case err != nil:
				return err
			default:
				root = ws.Root
			}
			if ci != "" {
				return scaffoldCI(g, root, ci)
			}
			return scaffold(g, root)
		},
	}
	cmd.Flags().StringVar(&ci, "ci", "", "write a CI workflow for `SYSTEM` instead of the quickstart: github or gitlab")
	return cmd
}

// ciFiles maps a --ci system to its template and where it goes.
var ciFiles = map[string][2]string{
	"github": {"ci/github/zen.yml", ".github/workflows/zen.yml"},
	"gitlab": {"ci/gitlab/.gitlab-ci.yml", ".gitlab-ci.yml"},
}

// scaffoldCI writes the CI workflow of system into root, unless a file is
// there already.
func scaffoldCI(g *globals, root, system string) error {
	f, ok := ciFiles[system]
	if !ok {
		return fmt.Errorf("--ci %q: want github or gitlab", system)
	}
	data, err := fs.ReadFile(examples.CI, f[0])
	if err != nil {
		return err
	}
	dest := filepath.Join(root, filepath.FromSlash(f[1]))
	if _, err := os.Stat(dest); err == nil {
		fmt.Fprintf(g.stdout, "kept    %s (exists)\n", f[1])
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(dest, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "created %s\n", f[1])
	fmt.Fprintf(g.stdout, "\nRead its head for the secrets it needs, then commit it:\n  git add %s && git commit -m \"zen in CI\"\n", f[1])
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
