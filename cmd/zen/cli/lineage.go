package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// lineage is where a model version came from, all of it read from the
// state ref and the repository's history.
type lineage struct {
	Model      string     `json:"model"`
	Version    string     `json:"version"`
	Digest     string     `json:"digest"`
	Repository string     `json:"repository"`
	SignedBy   string     `json:"signed_by,omitempty"`
	Output     string     `json:"output"`
	Run        lineageRun `json:"run"`
	// Source is the commit that declares the version, whose apply made it.
	Source sourceCommit `json:"source"`
	Steps  []lineageStp `json:"steps"`
}

type lineageRun struct {
	ID       string    `json:"id"`
	Pipeline string    `json:"pipeline"`
	Status   string    `json:"status"`
	Stack    string    `json:"stack"`
	Started  time.Time `json:"started"`
	// Source is the commit the run ran from, which may be another than
	// the one that declares the version (Source of the lineage), with
	// its uncommitted changes and its experiment's overrides.
	Source      sourceCommit   `json:"source"`
	DirtyDigest string         `json:"dirty_digest,omitempty"`
	Overrides   map[string]any `json:"overrides,omitempty"`
}

type sourceCommit struct {
	Commit  string    `json:"commit"`
	Subject string    `json:"subject,omitempty"`
	Author  string    `json:"author,omitempty"`
	When    time.Time `json:"when,omitzero"`
	Missing bool      `json:"missing_from_clone,omitempty"`
}

type lineageStp struct {
	Name       string                     `json:"name"`
	CacheKey   string                     `json:"cache_key,omitempty"`
	RunID      string                     `json:"run_id,omitempty"` // the run that produced its outputs, when reused
	Command    []string                   `json:"command,omitempty"`
	Parameters map[string]json.RawMessage `json:"parameters,omitempty"`
	Code       map[string]string          `json:"code,omitempty"`
	Inputs     []lineageInput             `json:"inputs,omitempty"`
	Outputs    map[string]state.Artifact  `json:"outputs,omitempty"`
}

type lineageInput struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Digest string `json:"digest"`
	Step   string `json:"step,omitempty"` // the upstream step, when the input is another step's output
}

// traceLineage follows a version back to its run, its source commit and
// every step upstream of the output it came from.
func traceLineage(sess *session, recs state.Records, mv *state.ModelVersion) (*lineage, error) {
	run, ok, err := recs.Run(mv.RunID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("model %s %s: run %s is not on %s", mv.Model, mv.ModelVersion, mv.RunID, sess.state.Ref())
	}
	runCommit, runDirty := mv.RunCommit, mv.RunDirty
	if runCommit == "" && runDirty == "" {
		// Recorded before the version named it: the run's record does.
		runCommit, runDirty = run.SourceCommit, run.DirtyDigest
	}
	l := &lineage{
		Model: mv.Model, Version: mv.ModelVersion, Digest: mv.Digest, Repository: mv.Repository, SignedBy: mv.SignedBy,
		Output: mv.Pipeline + "." + mv.Step + "." + mv.Output,
		Run: lineageRun{ID: run.ID, Pipeline: run.Pipeline, Status: run.Status, Stack: run.Stack, Started: run.Started,
			Source: sess.commitInfo(runCommit), DirtyDigest: runDirty, Overrides: run.Overrides},
		Source: sess.commitInfo(mv.SourceCommit),
	}
	queue, seen := []string{mv.Step}, map[string]bool{}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		res, ok := run.Steps[name]
		if !ok {
			return nil, fmt.Errorf("run %s has no step %s", run.ID, name)
		}
		st := lineageStp{Name: name, CacheKey: res.CacheKey, RunID: res.CachedFrom, Outputs: res.Outputs}
		if fp := res.Fingerprint; fp != nil {
			st.Command, st.Parameters, st.Code = fp.Command, fp.Parameters, fp.Code
			for _, in := range slices.Sorted(maps.Keys(fp.Inputs)) {
				li := lineageInput{Name: in, Source: res.Sources[in], Digest: fp.Inputs[in]}
				if up, _, ok := strings.Cut(li.Source, "."); ok && !strings.Contains(li.Source, "/") && run.Steps[up] != nil {
					li.Step = up
					queue = append(queue, up)
				}
				st.Inputs = append(st.Inputs, li)
			}
		}
		l.Steps = append(l.Steps, st)
	}
	return l, nil
}

// commitInfo is a commit with its subject, author and time from this
// clone's history, or marked missing when the clone lacks it.
func (s *session) commitInfo(commit string) sourceCommit {
	sc := sourceCommit{Commit: commit}
	if c, err := s.ws.Repo.CommitObject(plumbing.NewHash(commit)); err == nil && commit != "" {
		sc.Subject = strings.SplitN(c.Message, "\n", 2)[0]
		sc.Author = c.Author.Name + " <" + c.Author.Email + ">"
		sc.When = c.Author.When
	} else {
		sc.Missing = true
	}
	return sc
}

// text is the commit as lineage prints it: its hash, subject, author and
// time, or that this clone lacks it.
func (sc sourceCommit) text() string {
	if sc.Missing {
		return sc.Commit + " (not in this clone: git fetch it)"
	}
	return fmt.Sprintf("%s %q by %s, %s", sc.Commit, sc.Subject, sc.Author, sc.When.Local().Format(time.DateTime))
}

// sameAsVersion reports whether the run ran from the commit that declares
// the version, clean and with no overrides: then one line says both.
func (l *lineage) sameAsVersion() bool {
	return l.Run.Source.Commit == l.Source.Commit && l.Run.DirtyDigest == "" && len(l.Run.Overrides) == 0
}

func newLineage(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "lineage MODEL[:VERSION|@STAGE]",
		Short: "Trace a model version to its run, source commit, steps, parameters and inputs",
		Long: `Lineage prints where a model version came from: its digest and signing
key, the run that produced it, the source commit (subject and author, from
this clone's history), and every step upstream of its output with the
step's command, parameters, code files and input digests.

It reads only the state ref and the git history, so it works from a fresh
clone after git fetch origin 'refs/zen/*:refs/zen/*'.`,
		Example: "  zen lineage iris-classifier:1.0.0\n  zen lineage iris-classifier@production --output json\n  zen lineage iris-classifier@production --format dot | dot -Tsvg > lineage.svg",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, recs, err := openRecords(cmd, g, false)
			if err != nil {
				return err
			}
			mv, err := resolveVersion(recs, parseModelRef(args[0]))
			if err != nil {
				return err
			}
			l, err := traceLineage(sess, recs, mv)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, l)
			}
			switch format {
			case "text":
				l.text(g.stdout)
			case "dot":
				l.dot(g.stdout)
			case "mermaid":
				l.mermaid(g.stdout)
			default:
				return fmt.Errorf("--format %q: want text, dot or mermaid", format)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "text, dot or mermaid")
	return cmd
}

func (l *lineage) text(w io.Writer) {
	fmt.Fprintf(w, "model %s %s %s\n", l.Model, l.Version, l.Digest)
	signed := "unsigned"
	if l.SignedBy != "" {
		signed = "signed by key " + l.SignedBy
	}
	fmt.Fprintf(w, "├─ %s\n", signed)
	fmt.Fprintf(w, "├─ from %s in run %s (%s, stack %s, %s)\n", l.Output, l.Run.ID, l.Run.Status, l.Run.Stack, l.Run.Started.Local().Format(time.DateTime))
	if !l.sameAsVersion() {
		// The output was reused from a run of another commit, an
		// experiment or a dirty tree, with the keys the version's commit
		// gives.
		from := "run " + l.Run.ID + " ran from commit " + l.Run.Source.text()
		if l.Run.DirtyDigest != "" {
			from += ", with uncommitted changes " + l.Run.DirtyDigest
		}
		if len(l.Run.Overrides) > 0 {
			from += ", an experiment: " + setsText(l.Run.Overrides)
		}
		fmt.Fprintf(w, "├─ %s\n", from)
	}
	fmt.Fprintf(w, "├─ source commit %s (declares the version)\n", l.Source.text())
	for i, st := range l.Steps {
		branch, indent := "├─", "│  "
		if i == len(l.Steps)-1 {
			branch, indent = "└─", "   "
		}
		line := "step " + st.Name
		if st.RunID != "" {
			line += " (reused from run " + st.RunID + ")"
		}
		fmt.Fprintf(w, "%s %s\n", branch, line)
		var items []string
		if len(st.Command) > 0 {
			items = append(items, "command: "+strings.Join(st.Command, " "))
		}
		for _, k := range slices.Sorted(maps.Keys(st.Parameters)) {
			items = append(items, fmt.Sprintf("parameter %s = %s", schema.QuoteKey(k), st.Parameters[k]))
		}
		for _, k := range slices.Sorted(maps.Keys(st.Code)) {
			items = append(items, fmt.Sprintf("code %s %s", k, st.Code[k]))
		}
		for _, in := range st.Inputs {
			items = append(items, fmt.Sprintf("input %s ← %s %s", in.Name, in.Source, in.Digest))
		}
		for _, k := range slices.Sorted(maps.Keys(st.Outputs)) {
			items = append(items, fmt.Sprintf("output %s %s", k, st.Outputs[k].Digest))
		}
		for j, it := range items {
			b := "├─"
			if j == len(items)-1 {
				b = "└─"
			}
			fmt.Fprintf(w, "%s%s %s\n", indent, b, it)
		}
	}
}

// edges lists the lineage graph: from → to, with a label.
func (l *lineage) edges() [][3]string {
	model := "model " + l.Model + " " + l.Version
	var out [][3]string
	out = append(out, [3]string{"step " + strings.SplitN(strings.TrimPrefix(l.Output, l.Run.Pipeline+"."), ".", 2)[0], model, strings.SplitN(l.Output, ".", 3)[2]})
	for _, st := range l.Steps {
		for _, in := range st.Inputs {
			from := in.Source
			if in.Step != "" {
				from = "step " + in.Step
			}
			out = append(out, [3]string{from, "step " + st.Name, in.Name})
		}
	}
	out = append(out, [3]string{"commit " + short(l.Run.Source.Commit), "run " + l.Run.ID, "source"}, [3]string{"run " + l.Run.ID, model, "produced"})
	if l.Run.Source.Commit != l.Source.Commit {
		out = append(out, [3]string{"commit " + short(l.Source.Commit), model, "declared"})
	}
	return out
}

func (l *lineage) dot(w io.Writer) {
	fmt.Fprintln(w, "digraph lineage {")
	fmt.Fprintln(w, "  rankdir=LR;")
	for _, e := range l.edges() {
		fmt.Fprintf(w, "  %q -> %q [label=%q];\n", e[0], e[1], e[2])
	}
	fmt.Fprintln(w, "}")
}

func (l *lineage) mermaid(w io.Writer) {
	fmt.Fprintln(w, "flowchart LR")
	ids := map[string]string{}
	id := func(n string) string {
		if _, ok := ids[n]; !ok {
			ids[n] = fmt.Sprintf("n%d", len(ids))
		}
		return ids[n]
	}
	for _, e := range l.edges() {
		fmt.Fprintf(w, "  %s[%q] -->|%s| %s[%q]\n", id(e[0]), e[0], e[2], id(e[1]), e[1])
	}
}
