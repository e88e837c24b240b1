package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// runIndexRepo records runs of the pipelines in order, one id per run
// across two monthly shards, and returns the repository and the ids.
func runIndexRepo(t *testing.T, pipelines ...string) (string, []string) {
	t.Helper()
	dir := gitTestRepo(t)
	files := map[string]string{}
	var ids []string
	for i, p := range pipelines {
		id := fmt.Sprintf("2026%02d%02d-101500.000-%06x", 1+i*2/len(pipelines), 1+i%28, i)
		data, err := Encode(&Run{Version: RecordVersion, ID: id, Pipeline: p, Status: StatusSucceeded,
			Steps: map[string]*StepResult{"train": {Status: StatusSucceeded, Metrics: map[string]float64{"acc": float64(i)}}}})
		if err != nil {
			t.Fatal(err)
		}
		files[RunPath(id)] = string(data)
		ids = append(ids, id)
	}
	gitTestCommit(t, gitTestOpen(t, dir), "", files)
	return dir, ids
}

// previous is the first run RunsOf(pipeline, id) yields; ok is false
// when it yields none.
func previous(r Records, id, pipeline string) (*Run, bool, error) {
	for run, err := range r.RunsOf(pipeline, id) {
		return run, err == nil, err
	}
	return nil, false, nil
}

// previousByDecoding is what RunsOf must yield first: every run before id
// decoded in turn, newest first.
func previousByDecoding(t *testing.T, r Records, id, pipeline string) string {
	t.Helper()
	ids, err := r.RunIDs()
	if err != nil {
		t.Fatal(err)
	}
	for i := slices.Index(ids, id) - 1; i >= 0; i-- {
		run, ok, err := r.Run(ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if ok && run.Pipeline == pipeline {
			return run.ID
		}
	}
	return ""
}

// RunsOf yields first, before every run, the run decoding every record
// would find, and all of a pipeline's runs, newest first: with no index,
// with the index it wrote, and with a damaged one. Asked again, it reads
// tree entries and the run it yields, not the records between.
func TestRunsOf(t *testing.T) {
	pipelines := []string{"rare", "p", "q", "p", "q", "q", "other", "p", "q", "q", "q", "q", "rare", "p"}
	dir, ids := runIndexRepo(t, pipelines...)
	s := gitTestOpen(t, dir)
	index := filepath.Join(s.commonDir, runIndexFile)
	// A record outside its run's place, between ids[3] and ids[7] of p:
	// Run does not read it, and neither does RunsOf.
	gitTestCommit(t, s, gitTestHead(t, s).Commit(), map[string]string{
		"runs/202602/20260101-999999.000-lost.json": `{"version": 1, "id": "20260101-999999.000-lost", "pipeline": "p"}`})
	check := func(when string) {
		t.Helper()
		s := gitTestOpen(t, dir)
		r := Records{Snapshot: gitTestHead(t, s), Ref: DefaultRef}
		for i, id := range ids {
			want := previousByDecoding(t, r, id, pipelines[i])
			run, ok, err := previous(r, id, pipelines[i])
			if err != nil {
				t.Fatalf("%s: RunsOf(%s): %v", when, id, err)
			}
			got := ""
			if ok {
				got = run.ID
				if run.Pipeline != pipelines[i] || run.Steps["train"] == nil {
					t.Errorf("%s: RunsOf(%s) = %+v, not a decoded run of %s", when, id, run, pipelines[i])
				}
			}
			if got != want {
				t.Errorf("%s: RunsOf(%s, %s) = %q, want %q", when, id, pipelines[i], got, want)
			}
		}
		for _, p := range []string{"p", "q", "rare", "nope"} {
			var got, want []string
			for i := len(ids) - 1; i >= 0; i-- {
				if pipelines[i] == p {
					want = append(want, ids[i])
				}
			}
			for run, err := range r.RunsOf(p, "") {
				if err != nil {
					t.Fatalf("%s: RunsOf(%s): %v", when, p, err)
				}
				got = append(got, run.ID)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: RunsOf(%s) = %q, want %q", when, p, got, want)
			}
		}
	}
	check("no index")
	data, err := os.ReadFile(index)
	if err != nil {
		t.Fatalf("no index written: %v", err)
	}
	if n := strings.Count(string(data), "\n"); n != 1+len(ids) { // the header, and each run
		t.Errorf("index has %d lines, want %d:\n%s", n, 1+len(ids), data)
	}
	check("with the index")

	// The latest rare run's previous is the oldest run: with the index,
	// only the trees (root, runs, two shards) and that record are read.
	s = gitTestOpen(t, dir)
	s.reads.Store(0)
	r := Records{Snapshot: gitTestHead(t, s), Ref: DefaultRef}
	if run, ok, err := previous(r, ids[12], "rare"); err != nil || !ok || run.ID != ids[0] {
		t.Fatalf("the rare run before the latest = %v, %v, %v", run, ok, err)
	}
	if n := s.reads.Load(); n != 6 { // commit, root tree, runs, two shards, the record
		t.Errorf("with the index, RunsOf read %d objects, want 6", n)
	}
	s = gitTestOpen(t, dir)
	os.Remove(index)
	s.reads.Store(0)
	r = Records{Snapshot: gitTestHead(t, s), Ref: DefaultRef}
	if _, _, err := previous(r, ids[12], "rare"); err != nil {
		t.Fatal(err)
	}
	if n := s.reads.Load(); n != 6+11 {
		t.Errorf("without the index, RunsOf read %d objects, want 17 (the 11 records between too)", n)
	}

	// An index of other records, and lines a crash or an editor damaged,
	// are not trusted: the answers are the same.
	junk := runIndexHeader + strings.Repeat("0", 40) + " \"p\"\n" + "not a hash \"q\"\n" + strings.Repeat("a", 40) + " unquoted\n" + strings.Repeat("b", 40) + " \"cut"
	if err := os.WriteFile(index, []byte(junk), 0o644); err != nil {
		t.Fatal(err)
	}
	check("with a damaged index")
	if err := os.WriteFile(index, []byte("zen run pipelines 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check("with an index of another version")

	// No such run, and the first of its pipeline.
	if run, ok, err := previous(r, "20990101-000000.000-000000", "p"); ok || err != nil {
		t.Errorf("the run before no run = %v, %v, %v", run, ok, err)
	}
	if run, ok, err := previous(r, ids[0], "rare"); ok || err != nil {
		t.Errorf("the run before the first = %v, %v, %v", run, ok, err)
	}
}

// A record between that zen cannot read stops the search with a
// CorruptError naming it, as decoding it did, and writes no index.
func TestRunsOfCorrupt(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`{"version": 2, "pipeline": "p"}`, "record version 2; this zen reads version 1 (upgrade zen)"},
		{`{"pipeline": "p", "steps": {}}`, "no version field"},
		{`{"version": 1, "id": "x"}`, "no pipeline field"},
		{`[1, 2]`, "not a JSON object"},
		{`{"version": 1, "pipeline": 3}`, "pipeline: json: cannot unmarshal number"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			dir, ids := runIndexRepo(t, "p", "q", "p")
			s := gitTestOpen(t, dir)
			bad := RunPath("20260101-101500.000-000000")[:len("runs/202601/")] + "20260101-999999.000-bad.json"
			gitTestCommit(t, s, gitTestHead(t, s).Commit(), map[string]string{bad: tt.body})
			r := Records{Snapshot: gitTestHead(t, s), Ref: DefaultRef}
			_, _, err := previous(r, ids[2], "p")
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != bad || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("RunsOf past %s: %v, want a CorruptError of %s: %s", tt.body, err, bad, tt.want)
			}
			if _, err := os.Stat(filepath.Join(s.commonDir, runIndexFile)); err == nil {
				t.Error("an index was written for a search that failed")
			}
		})
	}
}

// recordPipeline reads the fields where zen writes them, and where an
// editor may have put them, matching keys as decoding does.
func TestRecordPipeline(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`{"version": 1, "id": "x", "pipeline": "train", "steps": {"a": {}}}`, "train"},
		{`{"steps": {"a": {"metrics": {"pipeline": 1}}}, "Pipeline": "late", "VERSION": 1}`, "late"},
		{`{"version": null, "pipeline": "p", "version": 1}`, "p"},
		{`{"version": 1, "pipeline": "p", "broken": }`, "p"},
	} {
		got, err := recordPipeline([]byte(tt.body))
		if err != nil || got != tt.want {
			t.Errorf("recordPipeline(%s) = %q, %v, want %q", tt.body, got, err, tt.want)
		}
	}
}
