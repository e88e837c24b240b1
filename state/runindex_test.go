package state

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// runIndexRepo records runs of the pipelines in order, one id per run
// across two monthly shards, and returns the repository and the ids. The
// runs indexed picks are recorded as zen records them now, with their
// index entries (AddRun); the others as zen recorded them before the
// index, alone.
func runIndexRepo(t *testing.T, indexed func(i int) bool, pipelines ...string) (string, []string) {
	t.Helper()
	dir := gitTestRepo(t)
	files := map[string][]byte{}
	var ids []string
	for i, p := range pipelines {
		id := fmt.Sprintf("2026%02d%02d-101500.000-%06x", 1+i*2/len(pipelines), 1+i%28, i)
		run := &Run{Version: RecordVersion, ID: id, Pipeline: p, Status: StatusSucceeded,
			Steps: map[string]*StepResult{"train": {Status: StatusSucceeded, Metrics: map[string]float64{"acc": float64(i)}}}}
		if indexed != nil && indexed(i) {
			if err := AddRun(files, run); err != nil {
				t.Fatal(err)
			}
		} else {
			data, err := Encode(run)
			if err != nil {
				t.Fatal(err)
			}
			files[RunPath(id)] = data
		}
		ids = append(ids, id)
	}
	s := gitTestOpen(t, dir)
	if _, err := s.Commit(t.Context(), "", Change{Files: files, Message: "test"}); err != nil {
		t.Fatal(err)
	}
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

// checkRunsOf checks RunsOf on the state of dir, as a fresh Store reads
// it, against decoding every record: the first run it yields before each
// of ids (runs of pipelines), and every run it yields of each pipeline
// (of pipelines, and of extra), newest first.
func checkRunsOf(t *testing.T, when, dir string, ids, pipelines, extra []string) {
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
	all, err := r.RunIDs()
	if err != nil {
		t.Fatal(err)
	}
	names := slices.Compact(slices.Sorted(slices.Values(pipelines)))
	for _, p := range append(append(names, extra...), "nope") {
		var got, want []string
		for i := len(all) - 1; i >= 0; i-- {
			if run, ok, err := r.Run(all[i]); err != nil {
				t.Fatal(err)
			} else if ok && run.Pipeline == p {
				want = append(want, all[i])
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

// cacheLines counts the runs the cache in dir's git dir remembers.
func cacheLines(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(gitTestOpen(t, dir).commonDir, runCacheFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "\n") - 1 // the header
}

// On a state recorded before the index, RunsOf yields what decoding every
// record would: with no cache, with the cache it wrote, and with a
// damaged one. Asked again, it reads tree entries and the run it yields,
// not the records between.
func TestRunsOf(t *testing.T) {
	pipelines := []string{"rare", "p", "q", "p", "q", "q", "other", "p", "q", "q", "q", "q", "rare", "p"}
	dir, ids := runIndexRepo(t, nil, pipelines...)
	s := gitTestOpen(t, dir)
	index := filepath.Join(s.commonDir, runCacheFile)
	// A record outside its run's place, between ids[3] and ids[7] of p:
	// Run does not read it, and neither does RunsOf.
	gitTestCommit(t, s, gitTestHead(t, s).Commit(), map[string]string{
		"runs/202602/20260101-999999.000-lost.json": `{"version": 1, "id": "20260101-999999.000-lost", "pipeline": "p"}`})
	check := func(when string) {
		t.Helper()
		checkRunsOf(t, when, dir, ids, pipelines, nil)
	}
	check("no cache")
	if n := cacheLines(t, dir); n != len(ids) {
		t.Errorf("the cache remembers %d runs, want %d", n, len(ids))
	}
	check("with the cache")

	// The latest rare run's previous is the oldest run: with the cache,
	// only the trees (root, runs, two shards) and that record are read.
	s = gitTestOpen(t, dir)
	s.reads.Store(0)
	r := Records{Snapshot: gitTestHead(t, s), Ref: DefaultRef}
	if run, ok, err := previous(r, ids[12], "rare"); err != nil || !ok || run.ID != ids[0] {
		t.Fatalf("the rare run before the latest = %v, %v, %v", run, ok, err)
	}
	if n := s.reads.Load(); n != 6 { // commit, root tree, runs, two shards, the record
		t.Errorf("with the cache, RunsOf read %d objects, want 6", n)
	}
	s = gitTestOpen(t, dir)
	os.Remove(index)
	s.reads.Store(0)
	r = Records{Snapshot: gitTestHead(t, s), Ref: DefaultRef}
	if _, _, err := previous(r, ids[12], "rare"); err != nil {
		t.Fatal(err)
	}
	if n := s.reads.Load(); n != 6+11 {
		t.Errorf("without the cache, RunsOf read %d objects, want 17 (the 11 records between too)", n)
	}

	// A cache of other records, and lines a crash or an editor damaged,
	// are not trusted: the answers are the same.
	junk := runCacheHeader + strings.Repeat("0", 40) + " \"p\"\n" + "not a hash \"q\"\n" + strings.Repeat("a", 40) + " unquoted\n" + strings.Repeat("b", 40) + " \"cut"
	if err := os.WriteFile(index, []byte(junk), 0o644); err != nil {
		t.Fatal(err)
	}
	check("with a damaged cache")
	if err := os.WriteFile(index, []byte("zen run pipelines 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check("with a cache of another version")

	// No such run, and the first of its pipeline.
	if run, ok, err := previous(r, "20990101-000000.000-000000", "p"); ok || err != nil {
		t.Errorf("the run before no run = %v, %v, %v", run, ok, err)
	}
	if run, ok, err := previous(r, ids[0], "rare"); ok || err != nil {
		t.Errorf("the run before the first = %v, %v, %v", run, ok, err)
	}
}

// A record between that zen cannot read stops the search with a
// CorruptError naming it, as decoding it did, and writes no cache.
func TestRunsOfCorrupt(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`{"version": 2, "pipeline": "p"}`, "record version 2; this zen reads version 1 (upgrade zen)"},
		{`{"pipeline": "p", "steps": {}}`, "no version field"},
		{`{"version": 1, "id": "x"}`, "no pipeline field"},
		{`[1, 2]`, "not a JSON object"},
		{`{"version": 1, "pipeline": 3}`, "pipeline: json: cannot unmarshal number"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			dir, ids := runIndexRepo(t, nil, "p", "q", "p")
			s := gitTestOpen(t, dir)
			bad := RunPath("20260101-101500.000-000000")[:len("runs/202601/")] + "20260101-999999.000-bad.json"
			gitTestCommit(t, s, gitTestHead(t, s).Commit(), map[string]string{bad: tt.body})
			r := Records{Snapshot: gitTestHead(t, s), Ref: DefaultRef}
			_, _, err := previous(r, ids[2], "p")
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != bad || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("RunsOf past %s: %v, want a CorruptError of %s: %s", tt.body, err, bad, tt.want)
			}
			if _, err := os.Stat(filepath.Join(s.commonDir, runCacheFile)); err == nil {
				t.Error("a cache was written for a search that failed")
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

// On a state zen recorded with the index, RunsOf yields what decoding
// every record would, reading of the runs between only tree entries:
// no record, and no cache written.
func TestRunsOfIndexed(t *testing.T) {
	pipelines := []string{"rare", "p", "q", "p", "q", "q", "other", "p", "q", "q", "q", "q", "rare", "p"}
	dir, ids := runIndexRepo(t, func(int) bool { return true }, pipelines...)
	checkRunsOf(t, "indexed", dir, ids, pipelines, nil)
	if n := cacheLines(t, dir); n != 0 {
		t.Errorf("the cache remembers %d runs, want none: the index has them all", n)
	}

	// The latest rare run's previous is the oldest run, in a fresh clone.
	s := gitTestOpen(t, dir)
	s.reads.Store(0)
	r := Records{Snapshot: gitTestHead(t, s), Ref: DefaultRef}
	if run, ok, err := previous(r, ids[12], "rare"); err != nil || !ok || run.ID != ids[0] {
		t.Fatalf("the rare run before the latest = %v, %v, %v", run, ok, err)
	}
	// The commit, the root, runs and its two months; the index's folder and
	// its two months; the blobs of the four pipelines between (q, p,
	// other, rare); and the one record.
	if n := s.reads.Load(); n != 1+1+3+1+2+4+1 {
		t.Errorf("RunsOf read %d objects, want 13: trees, a blob per pipeline, and no record but the one it yields", n)
	}
	for i, id := range ids {
		if data, ok, err := r.Snapshot.Read(RunIndexPath(id)); !ok || err != nil || string(data) != pipelines[i]+"\n" {
			t.Errorf("index entry of run %s of %s = %q, %v, %v", id, pipelines[i], data, ok, err)
		}
	}
}

// A state recorded before the index and since, and one where a zen that
// writes no index recorded after one that does: the runs the index lacks
// are read (and cached) as before, the others are not, and the answers
// are those of decoding every record.
func TestRunsOfMixed(t *testing.T) {
	pipelines := []string{"rare", "p", "q", "p", "q", "q", "other", "p", "q", "q", "q", "q", "rare", "p", "q", "p"}
	// The first seven before the index; of the others, the last but one
	// by an older zen again.
	old := func(i int) bool { return i < 7 || i == len(pipelines)-2 }
	dir, ids := runIndexRepo(t, func(i int) bool { return !old(i) }, pipelines...)
	checkRunsOf(t, "mixed", dir, ids, pipelines, nil)
	if n := cacheLines(t, dir); n != 8 {
		t.Errorf("the cache remembers %d runs, want the 8 the index lacks", n)
	}
	checkRunsOf(t, "mixed, with the cache", dir, ids, pipelines, nil)

	// Newest first, the unindexed q run between the indexed ones.
	s := gitTestOpen(t, dir)
	r := Records{Snapshot: gitTestHead(t, s), Ref: DefaultRef}
	var got []string
	for run, err := range r.RunsOf("q", ids[len(ids)-1]) {
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, run.ID); len(got) == 2 {
			break
		}
	}
	if want := []string{ids[14], ids[11]}; !slices.Equal(got, want) {
		t.Errorf("the q runs before the last = %q, want %q", got, want)
	}
}

// What zen does not write in the index is passed over, and the runs it
// concerns are read as those recorded before the index: an entry that
// names no pipeline, an entry of no recorded run or in another month than
// its run's, a folder where an entry goes, a file where the index or a
// month of it goes. An entry is trusted to name its run's pipeline: a
// record edited by hand to name another is yielded under neither.
func TestRunsOfIndexEdited(t *testing.T) {
	pipelines := []string{"p", "q", "p", "q", "other", "p", "q", "p"}
	dir, ids := runIndexRepo(t, func(int) bool { return true }, pipelines...)
	s := gitTestOpen(t, dir)
	edit := func(files map[string][]byte) {
		t.Helper()
		if _, err := s.Commit(t.Context(), gitTestHead(t, s).Commit(), Change{Files: files, Message: "edit"}); err != nil {
			t.Fatal(err)
		}
	}
	edit(map[string][]byte{
		RunIndexPath(ids[2]):                     []byte("Q\n"),
		RunIndexPath(ids[5]):                     []byte("p"),
		RunIndexPath(ids[6]):                     []byte("q\nq\n"),
		RunIndexPath(ids[1]):                     nil,
		RunIndexDir + "/202602/" + ids[1]:        []byte("p\n"), // not its month
		RunIndexPath("20260101-000000.000-gone"): []byte("p\n"),
		RunIndexPath("20260201-000000.000-gone"): []byte("q\n"),
		RunIndexPath(ids[3]):                     nil,
	})
	edit(map[string][]byte{RunIndexPath(ids[3]) + "/x": []byte("q\n")})
	checkRunsOf(t, "edited index", dir, ids, pipelines, nil)

	// A file where the index goes, or where one of its months goes.
	dir2, ids2 := runIndexRepo(t, func(int) bool { return false }, pipelines...)
	s2 := gitTestOpen(t, dir2)
	gitTestCommit(t, s2, gitTestHead(t, s2).Commit(), map[string]string{RunIndexDir: "x\n"})
	checkRunsOf(t, "the index a file", dir2, ids2, pipelines, nil)
	dir3, ids3 := runIndexRepo(t, func(i int) bool { return i >= len(pipelines)/2 }, pipelines...)
	s3 := gitTestOpen(t, dir3)
	gitTestCommit(t, s3, gitTestHead(t, s3).Commit(), map[string]string{RunIndexDir + "/202601": "x\n"})
	checkRunsOf(t, "a month of the index a file", dir3, ids3, pipelines, nil)

	// A record edited to name another pipeline than its entry.
	var run Run
	data, _, err := gitTestHead(t, s).Read(RunPath(ids[7]))
	if err != nil || decode(data, &run) != nil {
		t.Fatal(err)
	}
	run.Pipeline = "q"
	data, _ = Encode(&run)
	edit(map[string][]byte{RunPath(ids[7]): data})
	r := Records{Snapshot: gitTestHead(t, s), Ref: DefaultRef}
	for _, tt := range []struct{ pipeline, want string }{{"p", ids[5]}, {"q", ids[6]}} {
		if got, ok, err := previous(r, "", tt.pipeline); err != nil || !ok || got.ID != tt.want {
			t.Errorf("the latest run of %s = %v, %v, %v; want %s, not the record edited", tt.pipeline, got, ok, err, tt.want)
		}
	}
}

// Every run zen records has its index entry, in the same change: the
// pipeline's name, in the run's month.
func TestAddRun(t *testing.T) {
	files := map[string][]byte{}
	run := &Run{Version: RecordVersion, ID: "20261123-101500.123-3fa2c1", Pipeline: "train-model_2", Steps: map[string]*StepResult{}}
	if err := AddRun(files, run); err != nil {
		t.Fatal(err)
	}
	if got := RunIndexPath(run.ID); got != "run-pipelines/202611/20261123-101500.123-3fa2c1" {
		t.Errorf("RunIndexPath = %s", got)
	}
	if len(files) != 2 || files[RunPath(run.ID)] == nil || string(files[RunIndexPath(run.ID)]) != "train-model_2\n" {
		t.Errorf("AddRun wrote %q", slices.Sorted(maps.Keys(files)))
	}
	// A record edited by hand can name what no entry can hold, or an id no
	// entry can have: it gets none, and is read as a record from before
	// the index.
	for _, tt := range []struct{ pipeline, id string }{
		{"../x", "20261123-101500.123-3fa2c1"}, {"P", "20261123-101500.123-3fa2c1"}, {"", "20261123-101500.123-3fa2c1"},
		{"p", ".."}, {"p", "a/b"}, {"p", ""}, {"p", ".git"},
	} {
		files := map[string][]byte{}
		IndexRun(files, tt.pipeline, tt.id)
		if len(files) != 0 {
			t.Errorf("IndexRun(%q, %q) wrote %q", tt.pipeline, tt.id, slices.Sorted(maps.Keys(files)))
		}
	}
}
