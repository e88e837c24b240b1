// Package gate parses and evaluates promotion gates: comparisons of a
// model version's metrics joined by &&, such as
//
//	roc_auc >= 0.85 && evaluate.loss < 0.3
//	evaluate.roc_auc >= production.evaluate.roc_auc
//
// A metric is named as the producing run recorded it (step.metric), or by
// its bare name when only one step of the run wrote it. The right side may
// be a number or a metric of the version now in a stage of the same model
// (STAGE.step.metric or STAGE.metric).
package gate

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Expr is a parsed gate: comparisons that must all hold.
type Expr struct {
	Source string
	Terms  []Term
}

// Term is one comparison.
type Term struct {
	Left  string // a metric name
	Op    string // >=, >, <=, <, ==, !=
	Right Operand
}

// Operand is the right side: a number, or a metric of a stage's version.
type Operand struct {
	Number *float64
	Stage  string // with Metric: the version now in this stage
	Metric string
}

func (o Operand) String() string {
	if o.Number != nil {
		return strconv.FormatFloat(*o.Number, 'g', -1, 64)
	}
	return o.Stage + "." + o.Metric
}

var ops = []string{">=", "<=", "==", "!=", ">", "<"}

// Parse parses a gate. stages are the model's stage names, so that
// "production.evaluate.auc" on the right is read as a stage's metric.
func Parse(src string, stages []string) (*Expr, error) {
	e := &Expr{Source: src}
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("gate %q: empty", src)
	}
	for _, part := range strings.Split(src, "&&") {
		part = strings.TrimSpace(part)
		var t Term
		found := false
		for _, op := range ops {
			if i := strings.Index(part, op); i > 0 {
				t.Left, t.Op = strings.TrimSpace(part[:i]), op
				right := strings.TrimSpace(part[i+len(op):])
				if strings.ContainsAny(right, "<>=!") {
					return nil, fmt.Errorf("gate %q: %q: one comparison per term; join terms with &&", src, part)
				}
				if n, err := strconv.ParseFloat(right, 64); err == nil {
					// NaN never compares true, and an infinity bounds
					// nothing: a gate of either is a mistake.
					if math.IsNaN(n) || math.IsInf(n, 0) {
						return nil, fmt.Errorf("gate %q: %q: want a finite number", src, right)
					}
					t.Right.Number = &n
				} else {
					stage, metric, ok := strings.Cut(right, ".")
					if !ok || !contains(stages, stage) || !isName(metric) {
						return nil, fmt.Errorf("gate %q: %q: want a number or STAGE.metric of a stage of this model (stages: %s)", src, right, strings.Join(stages, ", "))
					}
					t.Right.Stage, t.Right.Metric = stage, metric
				}
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("gate %q: %q: want METRIC OP VALUE with OP one of >= > <= < == !=", src, part)
		}
		if !isName(t.Left) {
			return nil, fmt.Errorf("gate %q: %q is not a metric name", src, t.Left)
		}
		e.Terms = append(e.Terms, t)
	}
	return e, nil
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for i, r := range part {
			ok := r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9'
			if !ok {
				return false
			}
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Result is one term's outcome.
type Result struct {
	Term        Term
	Left, Right float64
	OK          bool
}

// String renders a result as "roc_auc >= 0.85: 0.91 ✓".
func (r Result) String() string {
	mark := "✓"
	if !r.OK {
		mark = "✗"
	}
	right := r.Term.Right.String()
	if r.Term.Right.Number == nil {
		right += fmt.Sprintf(" (%s)", num(r.Right))
	}
	return fmt.Sprintf("%s %s %s: %s %s", r.Term.Left, r.Term.Op, right, num(r.Left), mark)
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }

// Metrics are a run's metrics, named step.metric.
type Metrics map[string]float64

// Lookup finds a metric by full name (step.metric) or by bare name when
// exactly one step wrote it.
func (m Metrics) Lookup(name string) (float64, error) {
	if v, ok := m[name]; ok {
		return v, nil
	}
	var found []string
	for k := range m {
		if strings.HasSuffix(k, "."+name) && !strings.Contains(strings.TrimSuffix(k, "."+name), ".") {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 1:
		return m[found[0]], nil
	case 0:
		return 0, fmt.Errorf("no metric %q in the run (metrics: %s)", name, strings.Join(sortedNames(m), ", "))
	}
	return 0, fmt.Errorf("metric %q is ambiguous: %s; name the step", name, strings.Join(sortedNames(Metrics(pick(m, found))), ", "))
}

func pick(m Metrics, keys []string) Metrics {
	out := Metrics{}
	for _, k := range keys {
		out[k] = m[k]
	}
	return out
}

func sortedNames(m Metrics) []string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	for i := range names {
		for j := i + 1; j < len(names); j++ {
			if names[j] < names[i] {
				names[i], names[j] = names[j], names[i]
			}
		}
	}
	return names
}

// Eval evaluates the gate against a version's metrics; stage gives the
// metrics of the version now in a stage (nil when the stage is empty).
// It returns every term's result, and whether all hold.
func (e *Expr) Eval(m Metrics, stage func(name string) Metrics) ([]Result, bool, error) {
	var out []Result
	all := true
	for _, t := range e.Terms {
		l, err := m.Lookup(t.Left)
		if err != nil {
			return nil, false, fmt.Errorf("gate %q: %w", e.Source, err)
		}
		var r float64
		if t.Right.Number != nil {
			r = *t.Right.Number
		} else {
			sm := stage(t.Right.Stage)
			if sm == nil {
				// Nothing in the stage yet: there is no champion to beat.
				out = append(out, Result{Term: t, Left: l, OK: true})
				continue
			}
			if r, err = sm.Lookup(t.Right.Metric); err != nil {
				return nil, false, fmt.Errorf("gate %q: the version in %s: %w", e.Source, t.Right.Stage, err)
			}
		}
		ok := compare(l, t.Op, r)
		all = all && ok
		out = append(out, Result{Term: t, Left: l, Right: r, OK: ok})
	}
	return out, all, nil
}

func compare(l float64, op string, r float64) bool {
	switch op {
	case ">=":
		return l >= r
	case ">":
		return l > r
	case "<=":
		return l <= r
	case "<":
		return l < r
	case "==":
		return l == r
	}
	return l != r
}
