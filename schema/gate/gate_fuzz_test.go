package gate

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fuzzMetrics reads metrics written one a line as name=value; lines
// that are not are skipped.
func fuzzMetrics(s string) Metrics {
	m := Metrics{}
	for line := range strings.SplitSeq(s, "\n") {
		name, value, ok := strings.Cut(line, "=")
		if v, err := strconv.ParseFloat(value, 64); ok && err == nil {
			m[name] = v
		}
	}
	return m
}

// lookup finds a metric as Metrics.Lookup is documented to: by its full
// name, or by its bare name when exactly one step (a name without dots)
// wrote it.
func lookup(m Metrics, name string) (float64, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	var found []float64
	for k, v := range m {
		if _, metric, ok := strings.Cut(k, "."); ok && metric == name {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		return 0, false
	}
	return found[0], true
}

// holds says whether l op r holds.
func holds(l float64, op string, r float64) bool {
	return map[string]bool{">=": l >= r, ">": l > r, "<=": l <= r, "<": l < r, "==": l == r, "!=": l != r}[op]
}

// sameNumber is == for numbers, but NaN is itself.
func sameNumber(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

// FuzzGate parses an arbitrary gate for a model with the stages listed,
// comma-separated, in stages, and evaluates it against metrics, one
// name=value a line; the version in the first stage has the metrics of
// champion, the other stages are empty. Errors must quote the gate; a gate
// parsed must read back the same from its terms; every result must be
// what its comparison gives for the metrics as Lookup documents them.
func FuzzGate(f *testing.F) {
	run := "evaluate.roc_auc=0.91\nevaluate.loss=0.2\ntrain.loss=0.1\naccuracy=0.953"
	for _, src := range []string{
		"accuracy >= 0.9",
		"roc_auc >= 0.85 && evaluate.loss < 0.3",
		"evaluate.roc_auc >= production.evaluate.roc_auc",
		"roc_auc >= canary.roc_auc && accuracy != 1",
		"loss < 1",
		"evaluate.loss<=2e-1&&accuracy==0.953",
		"roc_auc > 0x1p-1 && accuracy > -Inf",
		"a > 1 > 2",
		"roc_auc >>= 1",
		" && ",
	} {
		f.Add(src, "production,canary", run, "evaluate.roc_auc=0.88\naccuracy=0.95")
	}
	f.Add("accuracy >= staging.accuracy", "staging", "accuracy=0.9", "")
	f.Fuzz(func(t *testing.T, src, stages, metrics, champion string) {
		stageNames := strings.Split(stages, ",")
		e, err := Parse(src, stageNames)
		if err != nil {
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("gate %q: ", src)) {
				t.Fatalf("Parse error does not quote the gate: %v", err)
			}
			return
		}
		if e.Source != src || len(e.Terms) != strings.Count(src, "&&")+1 {
			t.Fatalf("parsed %q into %d terms, source %q", src, len(e.Terms), e.Source)
		}
		var canon []string
		for _, term := range e.Terms {
			if term.Left == "" || strings.ContainsAny(term.Left, " \t<>=!&") || !isOp(term.Op) {
				t.Fatalf("%q: parsed term %+v", src, term)
			}
			if r := term.Right; r.Number == nil && (r.Metric == "" || !slices.Contains(stageNames, r.Stage)) {
				t.Fatalf("%q: parsed right side %+v of %+v", src, r, term)
			}
			canon = append(canon, term.Left+" "+term.Op+" "+term.Right.String())
		}
		again, err := Parse(strings.Join(canon, " && "), stageNames)
		if err != nil {
			t.Fatalf("%q reads back as %q, which does not parse: %v", src, strings.Join(canon, " && "), err)
		}
		for i, term := range again.Terms {
			was := e.Terms[i]
			if term.Left != was.Left || term.Op != was.Op || term.Right.Stage != was.Right.Stage || term.Right.Metric != was.Right.Metric ||
				(term.Right.Number == nil) != (was.Right.Number == nil) || term.Right.Number != nil && !sameNumber(*term.Right.Number, *was.Right.Number) {
				t.Fatalf("%q: term %d reads back as %+v, was %+v", src, i, term, was)
			}
		}

		m, champ := fuzzMetrics(metrics), fuzzMetrics(champion)
		stage := func(name string) Metrics {
			if name == stageNames[0] && champion != "" {
				return champ
			}
			return nil
		}
		results, all, err := e.Eval(m, stage)
		if err != nil {
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("gate %q: ", src)) {
				t.Fatalf("Eval error does not quote the gate: %v", err)
			}
			for _, term := range e.Terms {
				if _, ok := lookup(m, term.Left); !ok {
					return
				}
				if sm := stage(term.Right.Stage); term.Right.Number == nil && sm != nil {
					if _, ok := lookup(sm, term.Right.Metric); !ok {
						return
					}
				}
			}
			t.Fatalf("%q: every metric is there, yet Eval fails: %v", src, err)
		}
		if len(results) != len(e.Terms) {
			t.Fatalf("%q: %d results for %d terms", src, len(results), len(e.Terms))
		}
		want := true
		for i, r := range results {
			term := e.Terms[i]
			l, ok := lookup(m, term.Left)
			if !ok || !sameNumber(l, r.Left) {
				t.Fatalf("%q: %s is %v in the run, %v in the result", src, term.Left, l, r.Left)
			}
			okWant := true
			switch sm := stage(term.Right.Stage); {
			case term.Right.Number != nil:
				if !sameNumber(*term.Right.Number, r.Right) {
					t.Fatalf("%q: right side %v, result %v", src, *term.Right.Number, r.Right)
				}
				okWant = holds(l, term.Op, r.Right)
			case sm != nil:
				rv, found := lookup(sm, term.Right.Metric)
				if !found || !sameNumber(rv, r.Right) {
					t.Fatalf("%q: %s is %v in the stage, %v in the result", src, term.Right, rv, r.Right)
				}
				okWant = holds(l, term.Op, rv)
			}
			if r.OK != okWant {
				t.Fatalf("%q: %s gives %v, want %v", src, r, r.OK, okWant)
			}
			if s := r.String(); !strings.HasPrefix(s, term.Left+" "+term.Op+" ") {
				t.Fatalf("%q: result renders as %q", src, s)
			}
			want = want && okWant
		}
		if all != want {
			t.Fatalf("%q: Eval says %v, the results %v", src, all, want)
		}
	})
}

// isOp reports whether op is one of the comparisons.
func isOp(op string) bool {
	switch op {
	case ">=", ">", "<=", "<", "==", "!=":
		return true
	}
	return false
}
