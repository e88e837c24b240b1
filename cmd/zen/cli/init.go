package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
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
				return initCI(g, wd, ci, stack)
			}
			if stack != "" {
				return errors.New("--stack is for --ci: it names the stack the CI workflow uses")
			}
			done, err := zen.Init(wd, defaultBranch())
			if done == nil {
				return err
			}
			if done.Branch != "" {
				fmt.Fprintf(g.stdout, "initialized a git repository in %s (branch %s)\n", done.Root, done.Branch)
			}
			if err != nil {
				return err
			}
			for _, c := range done.Created {
				fmt.Fprintf(g.stdout, "created %s\n", c)
			}
			for _, k := range done.Kept {
				fmt.Fprintf(g.stdout, "kept    %s (exists)\n", k)
			}
			fmt.Fprint(g.stdout, `
Next:
  git add -A && git commit -m "zen init"
  zen plan     # what would run, and why
  zen apply    # run it; the runs are recorded on refs/zen/state
`)
			return nil
		},
	}
	cmd.Flags().StringVar(&ci, "ci", "", "write a CI workflow for `SYSTEM` instead of the quickstart: github or gitlab")
	cmd.Flags().StringVar(&stack, "stack", "", "with --ci, the `NAME` of the stack CI plans and applies on (default: $ZEN_STACK, then default_stack)")
	return cmd
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

// initCI writes the CI workflow of system for a stack (see zen.InitCI)
// and says what to do next.
func initCI(g *globals, dir, system, stack string) error {
	wf, err := zen.InitCI(dir, system, stack, os.Getenv("ZEN_STACK"))
	if err != nil {
		return err
	}
	if wf.Kept {
		fmt.Fprintf(g.stdout, "kept    %s (exists)\n", wf.Path)
		return nil
	}
	cs := wf.Stack
	fmt.Fprintf(g.stdout, "created %s for stack %s\n", wf.Path, cs.Name)
	if !cs.Signed {
		fmt.Fprintf(g.stdout, "\nStack %s has signer none: the versions CI makes are UNSIGNED.\n", cs.Name)
	} else if cs.PublicKey == "" {
		fmt.Fprintf(g.stderr, "note: stack %s declares no signer.public_key, so a plan made without the private key (a fork's pull request; on GitLab, a pipeline not given the protected key) checks no signatures of cached artifacts\n", cs.Name)
	}
	var secrets []string
	for _, s := range cs.Secrets {
		secrets = append(secrets, s.Env)
	}
	where := "as repository secrets"
	if system == "gitlab" {
		where = "as CI/CD variables"
	}
	fmt.Fprintf(g.stdout, "\nAdd %s %s (its head says what each is), then commit it:\n  git add %s && git commit -m \"zen in CI\"\n", strings.Join(secrets, ", "), where, wf.Path)
	return nil
}
