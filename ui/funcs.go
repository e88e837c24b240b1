package ui

import (
	"fmt"
	"html/template"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/state"
)

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"short":    short,
	"when":     when,
	"duration": duration,
	"stepTime": stepTime,
	"num":      num,
	"value":    value,
	"sorted":   sortedKeys,
	"path":     url.PathEscape,
	"query":    url.QueryEscape,
	"cached":   cachedSteps,
	"add":      func(a, b int) int { return a + b },
	"join":     strings.Join,
	"runPath":  state.RunPath,
	"results":  func(s stepView, store string) stepResults { return stepResults{s, store} },
}

// stepResults is what the "results" partial shows: a step's outputs and
// metrics, and which of them the store (named) lacks.
type stepResults struct {
	Step  stepView
	Store string
}

// short is a digest, commit or key as zen shows it in a line: a digest
// keeps its algorithm, then 12 characters.
func short(s string) string {
	if alg, hex, ok := strings.Cut(s, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// when is a time as the pages show it, UTC; "" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// duration is the time from start to end, "" when either is unknown.
func duration(start, end time.Time) string {
	if start.IsZero() || end.IsZero() || end.Before(start) {
		return ""
	}
	d := end.Sub(start)
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// stepTime is a step's start or end, "" when not recorded.
func stepTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// num is a number as zen prints metrics.
func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// value is a parameter or a diff's value, "" for none.
func value(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case float64:
		return num(x)
	}
	return zen.ValueText(v)
}

// sortedKeys are a map's keys, sorted.
func sortedKeys(m any) []string {
	switch x := m.(type) {
	case map[string]float64:
		return slices.Sorted(maps.Keys(x))
	case map[string]state.Artifact:
		return slices.Sorted(maps.Keys(x))
	case map[string]any:
		return slices.Sorted(maps.Keys(x))
	case map[string]string:
		return slices.Sorted(maps.Keys(x))
	}
	panic(fmt.Sprintf("sorted: %T", m))
}

// cachedSteps counts a run's steps whose outputs were reused.
func cachedSteps(r *state.Run) int {
	n := 0
	for _, s := range r.Steps {
		if s.Status == state.StatusCached {
			n++
		}
	}
	return n
}
