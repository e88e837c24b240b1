// Package view draws what package zen reads and does, for people: the
// text of zen's commands other than plan (whose renderers are in
// plan/render). It owns the lineage and pipeline graphs (text, Graphviz
// dot, Mermaid), the runs table and a run's detail, a model's history,
// the model listings, the summary of an apply, verification results, the
// stack listings, and a run's metrics and the metrics or parameters diff
// of two runs (text and GitHub-flavoured markdown).
//
// Every renderer takes an io.Writer and the library's structs (zen,
// state, schema, apply) and returns the first write error. The choice of
// a format, and the JSON forms, are the caller's: the structs encode as
// zen's documented --output json.
package view

import (
	"encoding/json"
	"io"
	"maps"
	"slices"
	"strings"
)

// writer keeps the first error of the writes made through it, so that a
// renderer writes line after line and returns that error once.
type writer struct {
	w   io.Writer
	err error
}

func (w *writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.w.Write(p)
	w.err = err
	return n, err
}

// Short is a hash as zen shows it in a line: its first 12 characters.
func Short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// setsText is an experiment's overrides as --set would give them, sorted:
// "demo.quality=9, demo.kind=\"rf\"".
func setsText(overrides map[string]any) string {
	var sets []string
	for _, k := range slices.Sorted(maps.Keys(overrides)) {
		b, _ := json.Marshal(overrides[k])
		sets = append(sets, k+"="+string(b))
	}
	return strings.Join(sets, ", ")
}
