package plan

import (
	"context"
	"strings"
	"testing"

	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// TestDataInput checks a {data: NAME@sha256:…} input: its digest is the
// input's in the cache key, read from the CUE alone; a new digest is an
// input change; a digest the store lacks fails the plan; and a file input
// git ignores is refused unless it says ignored: true.
func TestDataInput(t *testing.T) {
	d1, d2 := "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64)
	src := files{"data.csv": "sha256:d1", "load.py": "sha256:l1", "train.py": "sha256:t1", "exe:python3": "sha256:py"}
	data := func(cfg *schema.Config, digest string) {
		cfg.Pipelines["p"].Steps["load"].Inputs["data"] = &schema.Input{Name: "data", Kind: schema.InputData, Data: "iris", Digest: digest}
	}
	cfg := pipeline()
	data(cfg, d1)
	rec := &recorded{cache: map[string]*state.Cache{}, pipelines: map[string]*state.Pipeline{}}
	st := store{d1: true, d2: true}
	record(t, cfg, src, rec, st)

	// No file is read for it: the digest is in the CUE.
	fp, err := Fingerprint(cfg.Pipelines["p"].Steps["load"], files{}, nil)
	if err != nil || fp.Inputs["data"] != d1 {
		t.Errorf("fingerprint: %v %v", fp, err)
	}
	p, err := Compute(context.Background(), cfg, rec, src, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Pipelines[0].Steps[0]; s.Action != Cached || s.Fingerprint.Inputs["data"] != d1 {
		t.Errorf("same digest: %s %v", s.Action, s.Fingerprint.Inputs)
	}

	data(cfg, d2)
	if p, err = Compute(context.Background(), cfg, rec, src, st, Options{}); err != nil {
		t.Fatal(err)
	}
	if got := reasons(p.Pipelines[0].Steps[0]); got != "input changed: data" {
		t.Errorf("new digest: %s", got)
	}

	delete(st, d2)
	_, err = Compute(context.Background(), cfg, rec, src, st, Options{})
	if want := "pipeline p: step load: input data: data iris@" + d2 + " is not in the artifact store test store (push it there with zen data push)"; err == nil || err.Error() != want {
		t.Errorf("missing data: %v\nwant %s", err, want)
	}

	cfg = pipeline()
	in := cfg.Pipelines["p"].Steps["load"].Inputs["data"]
	in.GitIgnored = true
	_, err = Compute(context.Background(), cfg, rec, src, st, Options{})
	if err == nil || !strings.Contains(err.Error(), "input data: data.csv is ignored by git, so no clone holds its bytes: store it with `zen data push data.csv`") {
		t.Errorf("ignored file: %v", err)
	}
	in.Ignored = true
	if _, err = Compute(context.Background(), cfg, rec, src, st, Options{}); err != nil {
		t.Errorf("ignored: true: %v", err)
	}
}
