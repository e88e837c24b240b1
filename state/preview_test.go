package state

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

func TestPreviewRef(t *testing.T) {
	for branch, want := range map[string]string{
		"feature/lr":            "refs/zen/preview/feature/lr",
		"refs/heads/main":       "refs/zen/preview/main",
		"fix-1.2":               "refs/zen/preview/fix-1.2",
		"":                      "",
		"a..b":                  "",
		"a b":                   "",
		"x.lock":                "",
		"-starts-with-dash/../": "",
		"ends/":                 "",
	} {
		got, err := PreviewRef(branch)
		if want == "" {
			if err == nil {
				t.Errorf("PreviewRef(%q) = %q, want an error", branch, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("PreviewRef(%q) = %q, %v; want %q", branch, got, err, want)
		}
	}
}

// A preview's records are read where the state ref lacks them, Adopt
// gives what an apply reusing them records, and each ref's applies keep
// their own journals.
func TestPreviewRecords(t *testing.T) {
	ctx := context.Background()
	main, bare := func() (*Store, string) { a, _, bare := remoteTest(t); return a, bare }()
	dir := filepath.Dir(main.gitDir)
	gitTestCommit(t, main, "", map[string]string{
		RunPath("20261201-100000.000-aaaaaa"): `{"version":1,"id":"20261201-100000.000-aaaaaa","pipeline":"p","status":"succeeded","steps":{}}`,
		CachePath("k1"):                       `{"version":1,"key":"k1","pipeline":"p","step":"s","run_id":"20261201-100000.000-aaaaaa","outputs":{}}`,
	})
	ref, err := PreviewRef("feat")
	if err != nil {
		t.Fatal(err)
	}
	pv, err := Open(dir, ref)
	if err != nil {
		t.Fatal(err)
	}
	gitTestCommit(t, pv, "", map[string]string{
		RunPath("20261202-100000.000-bbbbbb"): `{"version":1,"id":"20261202-100000.000-bbbbbb","pipeline":"p","status":"succeeded","preview":"feat","steps":{}}`,
		CachePath("k2"):                       `{"version":1,"key":"k2","pipeline":"p","step":"s","run_id":"20261202-100000.000-bbbbbb","preview":"feat","outputs":{}}`,
		CachePath("k1"):                       `{"version":1,"key":"k1","pipeline":"p","step":"s","run_id":"20261202-100000.000-bbbbbb","preview":"feat","outputs":{}}`,
	})

	ps, err := main.Previews()
	if err != nil || len(ps) != 1 || ps[0].Branch != "feat" || ps[0].Ref != ref || ps[0].Remote != "" {
		t.Fatalf("Previews() = %+v, %v; want the clone's own preview of feat", ps, err)
	}
	prec, err := main.PreviewRecords(ps[0])
	if err != nil {
		t.Fatal(err)
	}
	recs := Records{Snapshot: gitTestHead(t, main), Ref: DefaultRef, Previews: []Records{prec}}

	// The state ref's own entry wins; the preview fills what it lacks.
	if c, ok, err := recs.Cache("k1"); err != nil || !ok || c.Preview != "" {
		t.Errorf("Cache(k1) = %+v, %v, %v; want the state ref's own", c, ok, err)
	}
	if c, ok, err := recs.Cache("k2"); err != nil || !ok || c.Preview != "feat" {
		t.Errorf("Cache(k2) = %+v, %v, %v; want the preview's", c, ok, err)
	}
	if r, ok, err := recs.Run("20261202-100000.000-bbbbbb"); err != nil || !ok || r.Preview != "feat" {
		t.Errorf("Run(preview's) = %+v, %v, %v", r, ok, err)
	}
	if _, ok, _ := recs.Cache("k3"); ok {
		t.Error("Cache(k3) found a key nobody recorded")
	}
	// Listing is the state ref's alone.
	if ids, _ := recs.RunIDs(); !slices.Equal(ids, []string{"20261201-100000.000-aaaaaa"}) {
		t.Errorf("RunIDs() = %v; want the state ref's run only", ids)
	}

	files, err := recs.Adopt("k2", "20261202-100000.000-bbbbbb")
	if err != nil || len(files) != 3 || files[CachePath("k2")] == nil || files[RunPath("20261202-100000.000-bbbbbb")] == nil ||
		string(files[RunIndexPath("20261202-100000.000-bbbbbb")]) != "p\n" {
		t.Errorf("Adopt(k2) = %v, %v; want the cache entry, the run and its index entry", keys(files), err)
	}
	if files, err := recs.Adopt("k1", "20261201-100000.000-aaaaaa"); err != nil || len(files) != 0 {
		t.Errorf("Adopt(k1) = %v, %v; want nothing: the state ref has both", keys(files), err)
	}
	if files, err := (Records{Snapshot: recs.Snapshot}).Adopt("k2", "x"); err != nil || files != nil {
		t.Errorf("Adopt without previews = %v, %v", files, err)
	}

	// Each ref's journals are its own.
	j, err := pv.OpenJournal("20261202-110000.000-cccccc", []*Run{{ID: "20261202-110000.000-cccccc", Pipeline: "p", Steps: map[string]*StepResult{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if left, err := main.LeftJournals(); err != nil || len(left) != 0 {
		t.Errorf("the state ref's LeftJournals() = %d, %v; want none: the journal is the preview's", len(left), err)
	}
	if left, err := pv.LeftJournals(); err != nil || len(left) != 1 {
		t.Errorf("the preview's LeftJournals() = %d, %v; want its own", len(left), err)
	}

	// Shared and fetched: the tracking ref is listed too; deleting
	// removes the remote's, the tracking ref and the clone's own.
	if _, err := pv.git(ctx, "push", "-q", "origin", ref+":"+ref); err != nil {
		t.Fatal(err)
	}
	if err := main.FetchPreviews(ctx, "origin"); err != nil {
		t.Fatal(err)
	}
	ps, _ = main.Previews()
	if len(ps) != 2 || ps[1].Remote != "origin" || ps[1].Ref != "refs/zen/remotes/origin/preview/feat" {
		t.Fatalf("after the fetch Previews() = %+v", ps)
	}
	if heads, err := main.RemoteBranches(ctx, "origin"); err != nil || !heads["main"] && !heads["master"] {
		t.Errorf("RemoteBranches() = %v, %v", heads, err)
	}
	if err := main.DeletePreview(ctx, "origin", "feat"); err != nil {
		t.Fatal(err)
	}
	if ps, _ := main.Previews(); len(ps) != 0 {
		t.Errorf("after DeletePreview, Previews() = %+v", ps)
	}
	if out := gitTestRun(t, bare, "for-each-ref", "refs/zen/preview"); out != "" {
		t.Errorf("the remote still has %s", out)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
