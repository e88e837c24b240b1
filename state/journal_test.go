package state

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// A journal left by a stopped apply is recorded by Recover: the runs as
// cancelled with the steps that finished, their cache entries, nothing
// else; a line cut short is ignored; a run already recorded is not
// overwritten.
func TestJournalRecover(t *testing.T) {
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	gitTestCommit(t, s, "", map[string]string{"pipelines/p.json": `{"version": 1, "pipeline": "p", "run_id": "r", "updated": "2026-11-23T10:00:00Z", "steps": {}}`})
	started := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	run := &Run{Version: RecordVersion, ID: "20261123-100000.000-aaaaaa", Pipeline: "p", Started: started, Steps: map[string]*StepResult{}}
	j, err := s.OpenJournal(run.ID, []*Run{run})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Artifact{"x": {Digest: "sha256:" + strings.Repeat("a", 64), Size: 1, Type: "file"}}
	res := &StepResult{Status: StatusSucceeded, CacheKey: strings.Repeat("b", 64), Outputs: out}
	c := &Cache{Version: RecordVersion, Key: res.CacheKey, Pipeline: "p", Step: "a", RunID: run.ID, Created: started, Outputs: out}
	if err := j.Add(run.ID, "a", res, c); err != nil {
		t.Fatal(err)
	}
	j.Close()
	// The kill came while the next line was written.
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"run_id":"20261123-100000.000-aaaaaa","step":"b","res`)
	f.Close()

	left, err := s.LeftJournals()
	if err != nil || len(left) != 1 || left[0].Steps() != 1 {
		t.Fatalf("LeftJournals = %+v, %v; want one journal with one step", left, err)
	}
	commit, err := s.Recover(context.Background(), left[0])
	if err != nil || commit == "" {
		t.Fatalf("Recover = %q, %v", commit, err)
	}
	recs := Records{Snapshot: gitTestHead(t, s), Ref: s.Ref()}
	got, ok, err := recs.Run(run.ID)
	if err != nil || !ok {
		t.Fatalf("run not recorded: %v", err)
	}
	if got.Status != StatusCancelled || len(got.Steps) != 1 || got.Steps["a"].Outputs["x"] != out["x"] || !strings.Contains(got.Error, "stopped") {
		t.Errorf("recovered run = %+v", got)
	}
	if _, ok, err := recs.Cache(c.Key); !ok || err != nil {
		t.Errorf("cache entry not recorded: %v", err)
	}
	if n, errs := recs.Check(); n != 3 || len(errs) != 0 {
		t.Errorf("Check = %d, %v", n, errs)
	}
	// With its index entry: the pipeline's runs are found from the tree.
	if data, ok, err := recs.Snapshot.Read(RunIndexPath(run.ID)); err != nil || !ok || string(data) != "p\n" {
		t.Errorf("index entry of the recovered run = %q, %v, %v", data, ok, err)
	}
	if left, _ := s.LeftJournals(); len(left) != 0 {
		t.Errorf("journal kept after Recover: %+v", left)
	}

	// Stopped after its runs were recorded: the record stays as it is.
	j2, err := s.OpenJournal(run.ID, []*Run{run})
	if err != nil {
		t.Fatal(err)
	}
	j2.Add(run.ID, "b", res, nil)
	j2.Close()
	left, _ = s.LeftJournals()
	if commit, err := s.Recover(context.Background(), left[0]); err != nil || commit != "" {
		t.Errorf("Recover of a recorded run = %q, %v; want nothing recorded", commit, err)
	}
	gitTestFsck(t, dir)
}
