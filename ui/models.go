package ui

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/state"
)

// modelSummary is one model of the models page.
type modelSummary struct {
	Name     string
	Versions []zen.ModelListing
}

func (u *UI) modelsPage(w http.ResponseWriter, r *http.Request) {
	rows, err := u.p.Models()
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, "cannot list the models", err)
		return
	}
	// Models lists the declared models' versions; a declared model with
	// none yet is listed too.
	cfg, err := u.p.Config()
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, "cannot load the work tree's CUE", err)
		return
	}
	byName := map[string]*modelSummary{}
	var models []*modelSummary
	for _, name := range slices.Sorted(maps.Keys(cfg.Models)) {
		byName[name] = &modelSummary{Name: name}
		models = append(models, byName[name])
	}
	for _, row := range rows {
		if m := byName[row.Model]; m != nil {
			m.Versions = append(m.Versions, row)
		}
	}
	u.render(w, r, "models", "Models", "models", models)
}

// signature is what VerifyModel says of a version: verified with which
// key, or why not.
type signature struct {
	OK    bool
	Key   string
	Error string
}

// verify checks a version's signature (zen verify).
func (u *UI) verify(c context.Context, ref zen.ModelRef) signature {
	res, err := u.p.VerifyModel(c, ref, zen.VerifyOptions{Stack: u.opts.Stack})
	if err != nil {
		return signature{Error: err.Error()}
	}
	return signature{OK: true, Key: res.Key}
}

// modelView is a model's page: its versions, stages and history.
type modelView struct {
	Name     string
	Versions []versionRow
	Stages   []string // the stages it has had, by name
	History  []zen.ModelEvent
	// HistoryError says why the history cannot be read.
	HistoryError string
}

// versionRow is a version on a model's page.
type versionRow struct {
	zen.ModelListing
	Signature signature
}

func (u *UI) modelPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("model")
	rows, err := u.p.Models()
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, "cannot list the models", err)
		return
	}
	v := modelView{Name: name}
	c, cancel := ctx(r)
	defer cancel()
	for _, row := range rows {
		if row.Model == name {
			v.Versions = append(v.Versions, versionRow{ModelListing: row, Signature: u.verify(c, zen.ModelRef{Model: name, Version: row.ModelVersion.ModelVersion})})
		}
	}
	cfg, _ := u.p.Config()
	if len(v.Versions) == 0 && (cfg == nil || cfg.Models[name] == nil) {
		u.fail(w, r, http.StatusNotFound, "model "+name+" not found", fmt.Errorf("the work tree declares no model %q and the state ref has no version of it", name))
		return
	}
	stages := map[string]bool{}
	if cfg != nil && cfg.Models[name] != nil {
		for s := range cfg.Models[name].Stages {
			stages[s] = true
		}
	}
	if v.History, err = u.p.History(name); err != nil {
		v.HistoryError = err.Error()
	}
	for _, e := range v.History {
		if e.Stage != "" {
			stages[e.Stage] = true
		}
	}
	v.Stages = slices.Sorted(maps.Keys(stages))
	u.render(w, r, "model", "Model "+name, "models", v)
}

// versionView is a model version's page: its record and its lineage.
type versionView struct {
	Version   *state.ModelVersion
	Stages    []string
	Signature signature
	Lineage   *zen.Lineage
	// LineageError says why the lineage cannot be traced.
	LineageError string
	Graph        graph
}

func (u *UI) versionPage(w http.ResponseWriter, r *http.Request) {
	ref := zen.ModelRef{Model: r.PathValue("model"), Version: r.PathValue("version")}
	mv, err := u.p.ModelVersion(ref)
	if err != nil {
		u.notFoundOr(w, r, "model version "+ref.String(), err)
		return
	}
	c, cancel := ctx(r)
	defer cancel()
	v := versionView{Version: mv, Stages: u.p.VersionStages(mv), Signature: u.verify(c, ref), Graph: graph{Nodes: []node{}, Edges: []edge{}}}
	if v.Lineage, err = u.p.Lineage(ref); err != nil {
		v.LineageError = err.Error()
	} else {
		v.Graph = lineageGraph(v.Lineage)
	}
	u.render(w, r, "version", "Model "+mv.Model+" "+mv.ModelVersion, "models", v)
}

// lineageGraph draws a lineage: the source commit, the run, the steps
// upstream of the output with their inputs, and the version.
func lineageGraph(l *zen.Lineage) graph {
	g := graph{Nodes: []node{}, Edges: []edge{}}
	commit := "commit:" + l.Run.Source.Commit
	g.Nodes = append(g.Nodes,
		node{ID: commit, Label: "commit " + short(l.Run.Source.Commit), Kind: "commit"},
		node{ID: "run:" + l.Run.ID, Label: "run " + l.Run.ID, Kind: "run", Status: l.Run.Status, Href: runHref(l.Run.ID)},
		node{ID: "version", Label: l.Model + " " + l.Version, Kind: "version"},
	)
	g.Edges = append(g.Edges, edge{From: commit, To: "run:" + l.Run.ID})
	for i, s := range l.Steps {
		id := "step:" + s.Name
		g.Nodes = append(g.Nodes, node{ID: id, Label: s.Name, Kind: "step", Href: stepHref(l.Run.ID, s.Name)})
		if i == 0 {
			g.Edges = append(g.Edges, edge{From: id, To: "version", Label: l.Output[strings.LastIndex(l.Output, ".")+1:]})
		}
		upstream := false
		for _, in := range s.Inputs {
			if in.Step != "" {
				upstream = true
				g.Edges = append(g.Edges, edge{From: "step:" + in.Step, To: id, Label: in.Name})
				continue
			}
			iid := "input:" + s.Name + ":" + in.Name
			g.Nodes = append(g.Nodes, node{ID: iid, Label: in.Source + " " + short(in.Digest), Kind: "input"})
			g.Edges = append(g.Edges, edge{From: iid, To: id, Label: in.Name})
		}
		if !upstream {
			g.Edges = append(g.Edges, edge{From: "run:" + l.Run.ID, To: id})
		}
	}
	return g
}

// auditView is a stage's audit: every move with its commits, author,
// gate and verdict, and each version's signature.
type auditView struct {
	Model, Stage string
	Moves        []auditMove
	Ref          string
}

// auditMove is one move of a stage.
type auditMove struct {
	zen.ModelEvent
	Source    zen.Commit
	Signature signature
	// Record is where the stage record of the move is on the state ref.
	Record string
}

func (u *UI) auditPage(w http.ResponseWriter, r *http.Request) {
	model, stage := r.PathValue("model"), r.PathValue("stage")
	events, err := u.p.History(model)
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, "cannot read the history of model "+model, err)
		return
	}
	v := auditView{Model: model, Stage: stage, Ref: u.p.State().Ref()}
	c, cancel := ctx(r)
	defer cancel()
	signatures := map[string]signature{}
	for _, e := range events {
		if e.Kind != zen.EventStage || e.Stage != stage {
			continue
		}
		m := auditMove{ModelEvent: e, Source: u.p.CommitInfo(e.SourceCommit), Record: state.StagesPath(model)}
		if e.Version != "" {
			sig, ok := signatures[e.Version]
			if !ok {
				sig = u.verify(c, zen.ModelRef{Model: model, Version: e.Version})
				signatures[e.Version] = sig
			}
			m.Signature = sig
		}
		v.Moves = append(v.Moves, m)
	}
	if len(v.Moves) == 0 {
		u.fail(w, r, http.StatusNotFound, fmt.Sprintf("stage %s of model %s not found", stage, model), errors.New("no move of it is recorded on "+v.Ref))
		return
	}
	slices.Reverse(v.Moves) // newest first
	u.render(w, r, "audit", "Audit of "+model+"@"+stage, "models", v)
}

// recordView is a record at a commit of the state ref.
type recordView struct {
	Commit, Path, Ref string
	Data              string
}

func (u *UI) recordPage(w http.ResponseWriter, r *http.Request) {
	commit, p := r.PathValue("commit"), r.PathValue("path")
	sn, err := u.p.State().At(commit)
	if err != nil {
		u.fail(w, r, http.StatusNotFound, "state commit "+commit+" not found", err)
		return
	}
	data, ok, err := sn.Read(p)
	if err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("state commit %s has no %s", short(commit), p)
		}
		u.fail(w, r, http.StatusNotFound, "record "+p+" not found", err)
		return
	}
	u.render(w, r, "record", p+" at "+short(commit), "models", recordView{Commit: commit, Path: p, Ref: u.p.State().Ref(), Data: string(data)})
}
