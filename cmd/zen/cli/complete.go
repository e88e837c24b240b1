package cli

import (
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// Shell completion offers what the repository holds: pipelines, stacks
// and models from its CUE, run ids, steps, outputs and model versions from
// the local state ref. It never fetches, never writes, and offers nothing
// (rather than an error) where the CUE or the state cannot be read.

// completer lists the candidates for one argument, given those before it.
type completer func(args []string) []string

// completeArgs gives cmd's positional arguments, in order, their
// completers; the last one repeats for commands that take many.
func completeArgs(cmd *cobra.Command, directive cobra.ShellCompDirective, each ...completer) {
	cmd.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		i := min(len(args), len(each)-1)
		var out []string
		for _, c := range each[i](args) {
			if strings.HasPrefix(c, toComplete) {
				out = append(out, c)
			}
		}
		return out, directive
	}
}

// completions attaches the completers to root's commands and flags.
func completions(root *cobra.Command) {
	none := cobra.ShellCompDirectiveNoFileComp
	find := func(path ...string) *cobra.Command {
		c, _, err := root.Find(path)
		if err != nil || c == root {
			panic("completions: no command " + strings.Join(path, " "))
		}
		return c
	}
	for _, p := range [][]string{{"plan"}, {"graph"}} {
		completeArgs(find(p...), none, pipelineNames)
	}
	// zen apply takes pipelines, or a saved plan file.
	completeArgs(find("apply"), cobra.ShellCompDirectiveDefault, pipelineNames)
	for _, p := range [][]string{{"runs", "show"}, {"runs", "watch"}, {"verify", "run"}, {"metrics", "show"}} {
		completeArgs(find(p...), none, recordedRuns, nothing)
	}
	for _, p := range [][]string{{"metrics", "diff"}, {"params", "diff"}} {
		completeArgs(find(p...), none, recordedRuns, recordedRuns, nothing)
	}
	completeArgs(find("logs"), none, recordedRuns, stepNames, nothing)
	completeArgs(find("artifacts", "get"), none, recordedRuns, stepNames, outputNames, nothing)
	for _, p := range [][]string{{"stack", "show"}, {"stack", "use"}} {
		completeArgs(find(p...), none, stackNames, nothing)
	}
	completeArgs(find("history"), none, modelNames, nothing)
	for _, p := range [][]string{{"lineage"}, {"models", "show"}, {"verify"}} {
		completeArgs(find(p...), none, modelRefs, nothing)
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for name, f := range map[string]completer{"stack": stackNames, "pipeline": pipelineNames} {
			if c.Flags().Lookup(name) != nil || c.PersistentFlags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
					var out []string
					for _, s := range f(nil) {
						if strings.HasPrefix(s, toComplete) {
							out = append(out, s)
						}
					}
					return out, none
				})
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func nothing([]string) []string { return nil }

// completionConfig loads the repository's CUE, or nil.
func completionConfig() *schema.Config {
	cfg, err := loadConfig(nil)
	if err != nil {
		return nil
	}
	return cfg
}

// completionRecords reads the local state ref, or gives false.
func completionRecords() (state.Records, bool) {
	sess, err := open(nil, false)
	if err != nil {
		return state.Records{}, false
	}
	recs, err := records(sess)
	return recs, err == nil
}

func pipelineNames([]string) []string {
	cfg := completionConfig()
	if cfg == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(cfg.Pipelines))
}

func stackNames([]string) []string {
	cfg := completionConfig()
	if cfg == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(stacks(cfg)))
}

func modelNames([]string) []string {
	cfg := completionConfig()
	if cfg == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(cfg.Models))
}

// modelRefs offers each model, each recorded version as MODEL:VERSION and
// each stage that holds one as MODEL@STAGE.
func modelRefs([]string) []string {
	names := modelNames(nil)
	recs, ok := completionRecords()
	out := slices.Clone(names)
	if !ok {
		return out
	}
	for _, m := range names {
		vs, _ := recs.ModelVersions(m)
		for _, v := range vs {
			out = append(out, m+":"+v)
		}
		if st, _, err := recs.Stages(m); err == nil && st != nil {
			for _, s := range slices.Sorted(maps.Keys(st.Stages)) {
				out = append(out, m+"@"+s)
			}
		}
	}
	return out
}

// recordedRuns offers "latest" and the recorded runs, newest first.
func recordedRuns([]string) []string {
	recs, ok := completionRecords()
	if !ok {
		return nil
	}
	ids, err := recs.RunIDs()
	if err != nil || len(ids) == 0 {
		return nil
	}
	slices.Reverse(ids)
	return append([]string{"latest"}, ids...)
}

// completionRun reads the run args[0] names.
func completionRun(args []string) *state.Run {
	if len(args) == 0 {
		return nil
	}
	sess, err := open(nil, false)
	if err != nil {
		return nil
	}
	r, err := sess.Run(args[0])
	if err != nil {
		return nil
	}
	return r
}

func stepNames(args []string) []string {
	r := completionRun(args)
	if r == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(r.Steps))
}

func outputNames(args []string) []string {
	r := completionRun(args)
	if r == nil || len(args) < 2 || r.Steps[args[1]] == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(r.Steps[args[1]].Outputs))
}
