package ui

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/state"
)

// runsView is the runs list: one page of runs, newest first.
type runsView struct {
	Runs       []zen.RunEntry
	Total      int
	Page, Last int // pages from 1
	From, To   int // the runs shown, counted from 1
}

func (u *UI) runsPage(w http.ResponseWriter, r *http.Request) {
	n := 1
	if s := r.URL.Query().Get("page"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			u.fail(w, r, http.StatusBadRequest, fmt.Sprintf("page %q: want a page number from 1", s), nil)
			return
		}
	}
	size := u.opts.PageSize
	runs, total, err := u.p.RunPage((n-1)*size, size)
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, "cannot list the runs on "+u.p.State().Ref(), err)
		return
	}
	v := runsView{Runs: runs, Total: total, Page: n, Last: max(1, (total+size-1)/size)}
	if len(runs) > 0 {
		v.From, v.To = (n-1)*size+1, (n-1)*size+len(runs)
	}
	u.render(w, r, "runs", "Runs", "runs", v)
}

// runView is a run page: the run, its step graph, and what the store
// holds of its artifacts.
type runView struct {
	Run   *state.Run
	Graph graph
	Steps []stepView
	// Store names the store its artifacts are read from; StoreError says
	// why it could not be read.
	Store      string
	StoreError string
}

// stepView is one step of a run page.
type stepView struct {
	Name string
	*state.StepResult
	// Missing lists the artifacts (an output's name, or "log") the store
	// lacks.
	Missing []string
}

// graph is what assets/graph.js lays out with dagre and draws as SVG.
type graph struct {
	Nodes []node `json:"nodes"`
	Edges []edge `json:"edges"`
}

type node struct {
	ID     string `json:"id"`
	Label  string `json:"label"`
	Kind   string `json:"kind"` // step, run, commit, input, version
	Status string `json:"status,omitempty"`
	Href   string `json:"href,omitempty"`
}

type edge struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Label string `json:"label,omitempty"`
}

// runHref is a run page's address.
func runHref(id string) string { return "/runs/" + url.PathEscape(id) }

// stepHref is a step page's address.
func stepHref(run, step string) string { return runHref(run) + "/steps/" + url.PathEscape(step) }

func (u *UI) runPage(w http.ResponseWriter, r *http.Request) {
	run, err := u.p.Run(r.PathValue("id"))
	if err != nil {
		u.notFoundOr(w, r, "run "+r.PathValue("id"), err)
		return
	}
	v := runView{Run: run, Graph: graph{Nodes: []node{}, Edges: []edge{}}}
	g := zen.RunGraph(run)
	for _, name := range g.Steps {
		v.Graph.Nodes = append(v.Graph.Nodes, node{ID: name, Label: name, Kind: "step", Status: run.Steps[name].Status, Href: stepHref(run.ID, name)})
	}
	for _, e := range g.Edges {
		v.Graph.Edges = append(v.Graph.Edges, edge{From: e.From, To: e.To, Label: e.Output})
	}
	var digests []string
	for _, name := range g.Steps {
		s := run.Steps[name]
		for _, a := range s.Outputs {
			digests = append(digests, a.Digest)
		}
		if s.Log != nil {
			digests = append(digests, s.Log.Digest)
		}
	}
	c, cancel := ctx(r)
	defer cancel()
	store, has, err := u.p.StoredArtifacts(c, run, u.opts.Stack, digests)
	v.Store = store
	if err != nil {
		v.StoreError = err.Error()
	}
	for _, name := range g.Steps {
		s := run.Steps[name]
		sv := stepView{Name: name, StepResult: s}
		if has != nil {
			for _, o := range sortedKeys(s.Outputs) {
				if !has[s.Outputs[o].Digest] {
					sv.Missing = append(sv.Missing, o)
				}
			}
			if s.Log != nil && !has[s.Log.Digest] {
				sv.Missing = append(sv.Missing, "log")
			}
		}
		v.Steps = append(v.Steps, sv)
	}
	u.render(w, r, "run", "Run "+run.ID, "runs", v)
}

// stepPageView is a step page: the step's record and its log.
type stepPageView struct {
	Run  *state.Run
	Step stepView
	// Log is the step's output; LogError says why it cannot be shown
	// (no log recorded, or the store lacks it, and which store).
	Log      string
	LogError string
	Store    string
}

func (u *UI) stepPage(w http.ResponseWriter, r *http.Request) {
	run, s, err := u.p.RunStep(r.PathValue("id"), r.PathValue("step"))
	if err != nil {
		u.notFoundOr(w, r, "step "+r.PathValue("step")+" of run "+r.PathValue("id"), err)
		return
	}
	name := r.PathValue("step")
	v := stepPageView{Run: run, Step: stepView{Name: name, StepResult: s}}
	c, cancel := ctx(r)
	defer cancel()
	var digests []string
	for _, a := range s.Outputs {
		digests = append(digests, a.Digest)
	}
	store, has, err := u.p.StoredArtifacts(c, run, u.opts.Stack, digests)
	v.Store = store
	if err == nil {
		for _, o := range sortedKeys(s.Outputs) {
			if !has[s.Outputs[o].Digest] {
				v.Step.Missing = append(v.Step.Missing, o)
			}
		}
	}
	switch log, err := u.p.StepLog(c, run.ID, name, u.opts.Stack); {
	case err != nil && s.Log != nil:
		v.LogError = fmt.Sprintf("log %s cannot be read from %s: %v", s.Log.Digest, store, err)
	case err != nil:
		v.LogError = err.Error()
	default:
		v.Log = string(log)
	}
	u.render(w, r, "step", "Step "+name+" of run "+run.ID, "runs", v)
}
