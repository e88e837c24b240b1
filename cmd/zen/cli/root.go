// Package cli is zen's command line: one cobra command per verb, each a thin
// layer over a library call.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/zen-dev/zen/apply"
)

// Exit codes.
const (
	exitOK        = 0
	exitError     = 1
	exitChanges   = 2   // zen plan --detailed-exitcode: the plan is not empty
	exitCancelled = 130 // interrupted
)

// exitError carries an exit code through cobra; its message, if any, has
// been printed already or is printed by Main.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *codeError) Unwrap() error { return e.err }

// Main runs zen with os.Args and returns the exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if p := os.Getenv("ZEN_CPUPROFILE"); p != "" {
		// For zen's own performance work: a CPU profile of this command.
		if f, err := os.Create(p); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	root := newRoot(os.Stdout, os.Stderr)
	root.SetArgs(os.Args[1:])
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitError
	var ce *codeError
	if errors.As(err, &ce) {
		code = ce.code
	}
	var re *apply.RunError
	if errors.As(err, &re) && re.Cancelled() {
		code = exitCancelled
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		// Interrupted while it waited (for a lock, a retry, Slurm).
		code = exitCancelled
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(os.Stderr, "zen: "+msg)
	}
	return code
}

// globals are the flags every command has.
type globals struct {
	dir    string
	output string
	stdout io.Writer
	stderr io.Writer
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "zen",
		Short: "Run ML pipelines declared in CUE; record them in git; store artifacts in OCI registries",
		Long: `zen runs ML pipelines that a git repository declares in CUE.

  zen plan    shows which steps would run, and why, and which are cached
  zen apply   runs them, stores their outputs as OCI artifacts and records
              the runs as commits on the state ref (refs/zen/state)

Everything zen did can be read back from any clone: zen runs, zen logs,
zen artifacts get, or plain git log refs/zen/state.`,
		Example: `  zen init                 # scaffold a project in this git repository
  zen plan                 # what would run
  zen apply                # run it and record it
  zen runs show latest     # what happened`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&g.dir, "directory", "C", "", "run as if zen was started in `DIR`")
	root.PersistentFlags().StringVar(&g.output, "output", "text", "output format: text or json (zen plan, metrics, params: also markdown)")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		switch {
		case g.output == "markdown" && !markdownOK(cmd):
			return fmt.Errorf("--output markdown is for zen plan; %s writes text or json", cmd.CommandPath())
		case g.output != "text" && g.output != "json" && g.output != "markdown":
			return fmt.Errorf("--output %q: want text or json (zen plan: also markdown)", g.output)
		}
		if g.dir != "" {
			// zen does not change its directory: the library is given
			// -C's, and paths the user gives resolve against it (see
			// globals.path). The folder is checked as chdir would.
			if err := checkDir(g.dir); err != nil {
				return fmt.Errorf("-C: %w", err)
			}
		}
		return nil
	}
	root.AddCommand(
		newInit(g), newValidate(g), newSchema(g), newGraph(g),
		newPlan(g), newApply(g), newRuns(g), newLogs(g), newArtifacts(g),
		newStack(g), newData(g), newModels(g), newVerify(g), newLineage(g), newHistory(g), newMetrics(g), newParams(g), newPlots(g), newPreview(g), newKeys(g), newPin(g), newState(g), newVersion(g), newStepRun(g), newUI(g),
		newDeployments(g),
	)
	groups(root)
	completions(root)
	return root
}

// checkDir fails as chdir(2) would for dir: a folder that is missing, not
// a folder, or not searchable.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil && !fi.IsDir() {
		err = syscall.ENOTDIR
	} else if err == nil {
		err = unix.Access(dir, unix.X_OK)
	} else if pe, ok := err.(*fs.PathError); ok {
		err = pe.Err
	}
	if err != nil {
		return &fs.PathError{Op: "chdir", Path: dir, Err: err}
	}
	return nil
}

// groups makes every command that only holds subcommands (zen runs, zen
// models, ...) refuse an unknown subcommand with an error, and a
// suggestion where one is close, instead of printing its help and exiting
// 0. Without arguments it still prints its help.
func groups(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		groups(c)
	}
	if cmd.Run != nil || cmd.RunE != nil || !cmd.HasSubCommands() || !cmd.HasParent() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.SuggestionsMinimumDistance = 2
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return fmt.Errorf("%s (run %s --help for its commands)", msg, c.CommandPath())
	}
}

// version is set at build time with -ldflags "-X .../cli.version=...".
var version = "dev"

func newVersion(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print zen's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.output == "json" {
				return writeJSON(g.stdout, map[string]string{"version": version})
			}
			fmt.Fprintln(g.stdout, "zen", version)
			return nil
		},
	}
}
