package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/zen-dev/zen/registry/provenance"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// files is a repository's file digests, for Sources.
type files map[string]string

func (f files) File(p string) (string, error) { return f[p], nil }
func (f files) Dir(p string) (string, error)  { return f[p], nil }
func (f files) Code(s *schema.Step) (map[string]string, error) {
	code := map[string]string{}
	for _, a := range s.Run {
		if d, ok := f[a]; ok {
			code[a] = d
		}
	}
	return code, nil
}
func (f files) Executable(name string) (string, error) { return name + " " + f["exe:"+name], nil }

// recorded is a state ref's records, for Recorded.
type recorded struct {
	cache     map[string]*state.Cache
	pipelines map[string]*state.Pipeline
}

func (r *recorded) Cache(k string) (*state.Cache, bool, error) {
	c, ok := r.cache[k]
	return c, ok, nil
}
func (r *recorded) Pipeline(n string) (*state.Pipeline, bool, error) {
	p, ok := r.pipelines[n]
	return p, ok, nil
}

// store is the set of digests an artifact store holds.
type store map[string]bool

func (s store) Has(_ context.Context, d string) (bool, error) { return s[d], nil }
func (s store) String() string                                { return "test store" }

func pipeline() *schema.Config {
	steps := map[string]*schema.Step{
		"load": {Pipeline: "p", Name: "load", Run: []string{"python3", "load.py"}, Cache: true,
			Parameters: map[string]any{"seed": json.Number("1")},
			Inputs:     map[string]*schema.Input{"data": {Name: "data", Kind: schema.InputFile, Path: "data.csv"}},
			Outputs:    map[string]*schema.Output{"train": {Name: "train", Type: "table"}}},
		"train": {Pipeline: "p", Name: "train", Run: []string{"python3", "train.py"}, Cache: true,
			Parameters: map[string]any{"lr": json.Number("0.1")},
			Inputs:     map[string]*schema.Input{"train": {Name: "train", Kind: schema.InputStep, Step: "load", Output: "train"}},
			Outputs:    map[string]*schema.Output{"model": {Name: "model", Type: "model"}}},
	}
	return &schema.Config{Pipelines: map[string]*schema.Pipeline{"p": {Name: "p", Steps: steps, Order: []string{"load", "train"}}}}
}

// record makes the state an apply of cfg with src would leave.
func record(t *testing.T, cfg *schema.Config, src files, rec *recorded, st store) {
	t.Helper()
	p, err := Compute(context.Background(), cfg, rec, src, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pr := &state.Pipeline{Pipeline: "p", Steps: map[string]*state.StepState{}}
	outputs := map[string]string{}
	for _, ps := range p.Pipelines[0].Steps {
		s := cfg.Pipelines["p"].Steps[ps.Name]
		up := map[string]string{}
		for _, in := range s.Inputs {
			if in.Kind == schema.InputStep {
				up[in.Name] = outputs[in.Step+"."+in.Output]
			}
		}
		fp, err := Fingerprint(s, src, up)
		if err != nil {
			t.Fatal(err)
		}
		key := Key(fp)
		c := &state.Cache{Key: key, Pipeline: s.Pipeline, Step: s.Name, RunID: "r1", Outputs: map[string]state.Artifact{}}
		for name := range s.Outputs {
			d := "sha256:out-" + ps.Name + "-" + name
			c.Outputs[name] = state.Artifact{Digest: d}
			outputs[ps.Name+"."+name] = d
			st[d] = true
		}
		rec.cache[key] = c
		pr.Steps[ps.Name] = &state.StepState{Fingerprint: fp, Key: key, Status: state.StatusSucceeded, RunID: "r1"}
	}
	rec.pipelines["p"] = pr
}

func reasons(s *Step) string {
	var out []string
	for _, r := range s.Reasons {
		out = append(out, r.String())
	}
	return strings.Join(out, "; ")
}

func TestCompute(t *testing.T) {
	base := files{"data.csv": "sha256:d1", "load.py": "sha256:l1", "train.py": "sha256:t1", "exe:python3": "sha256:py"}
	tests := []struct {
		name   string
		change func(cfg *schema.Config, src files, st store)
		want   map[string]string // step → action: reasons
	}{
		{"nothing changed", func(*schema.Config, files, store) {},
			map[string]string{"load": "cached: ", "train": "cached: "}},
		{"code changed", func(_ *schema.Config, src files, _ store) { src["train.py"] = "sha256:t2" },
			map[string]string{"load": "cached: ", "train": "run: code changed: train.py"}},
		{"parameter changed", func(cfg *schema.Config, _ files, _ store) {
			cfg.Pipelines["p"].Steps["train"].Parameters["lr"] = json.Number("0.2")
		}, map[string]string{"load": "cached: ", "train": "run: parameter changed: lr 0.1 → 0.2"}},
		{"parameter added", func(cfg *schema.Config, _ files, _ store) {
			cfg.Pipelines["p"].Steps["train"].Parameters["depth"] = json.Number("3")
		}, map[string]string{"train": "run: parameter changed: depth (unset) → 3"}},
		{"input changed", func(_ *schema.Config, src files, _ store) { src["data.csv"] = "sha256:d2" },
			map[string]string{"load": "run: input changed: data", "train": "run: upstream re-runs: load"}},
		{"executable changed", func(_ *schema.Config, src files, _ store) { src["exe:python3"] = "sha256:py2" },
			map[string]string{"load": "run: executable changed: python3", "train": "run: upstream re-runs: load; executable changed: python3"}},
		{"outputs missing from store", func(_ *schema.Config, _ files, st store) { delete(st, "sha256:out-load-train") },
			map[string]string{"load": "run: cached outputs missing from the store: train", "train": "run: upstream re-runs: load"}},
		{"cache false", func(cfg *schema.Config, _ files, _ store) { cfg.Pipelines["p"].Steps["train"].Cache = false },
			map[string]string{"load": "cached: ", "train": "run: cache: false"}},
		{"new step", func(cfg *schema.Config, _ files, _ store) {
			cfg.Pipelines["p"].Steps["extra"] = &schema.Step{Name: "extra", Run: []string{"true"}, Cache: true}
			cfg.Pipelines["p"].Order = append(cfg.Pipelines["p"].Order, "extra")
		}, map[string]string{"extra": "create: new step"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := pipeline()
			src := files{}
			for k, v := range base {
				src[k] = v
			}
			rec := &recorded{cache: map[string]*state.Cache{}, pipelines: map[string]*state.Pipeline{}}
			st := store{}
			record(t, cfg, src, rec, st)
			tt.change(cfg, src, st)
			p, err := Compute(context.Background(), cfg, rec, src, st, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range p.Pipelines[0].Steps {
				want, ok := tt.want[s.Name]
				if !ok {
					continue
				}
				if got := string(s.Action) + ": " + reasons(s); got != want {
					t.Errorf("%s: got %q, want %q", s.Name, got, want)
				}
			}
		})
	}
}

func TestKeyStable(t *testing.T) {
	// The key depends on content, not on map order or on where the
	// values came from.
	a := &state.Fingerprint{Command: []string{"x"}, Parameters: map[string]json.RawMessage{"a": []byte("1"), "b": []byte("2")}, Inputs: map[string]string{"i": "sha256:1", "j": "sha256:2"}}
	b := &state.Fingerprint{Command: []string{"x"}, Parameters: map[string]json.RawMessage{"b": []byte("2"), "a": []byte("1")}, Inputs: map[string]string{"j": "sha256:2", "i": "sha256:1"}}
	if Key(a) != Key(b) {
		t.Fatal("key depends on map order")
	}
	b.Inputs["j"] = "sha256:3"
	if Key(a) == Key(b) {
		t.Fatal("key ignores an input digest")
	}
	if len(Key(a)) != 64 {
		t.Fatalf("key %q is not a sha256 hex", Key(a))
	}
}

func TestFirstPlan(t *testing.T) {
	cfg := pipeline()
	src := files{"data.csv": "sha256:d1", "load.py": "sha256:l1", "train.py": "sha256:t1"}
	rec := &recorded{cache: map[string]*state.Cache{}, pipelines: map[string]*state.Pipeline{}}
	p, err := Compute(context.Background(), cfg, rec, src, store{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := reasons(p.Pipelines[0].Steps[1]); got != "upstream re-runs: load" {
		t.Errorf("train: %q", got)
	}
	if sum := p.Summary(); sum.Run != 2 || sum.Pipelines != 1 || sum.Cached != 0 || !p.Changes() {
		t.Errorf("summary = %+v", sum)
	}
	if _, err := Compute(context.Background(), cfg, rec, src, store{}, Options{Pipelines: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), `no pipeline "nope" (pipelines: p)`) {
		t.Errorf("unknown pipeline: %v", err)
	}
}

// TestUntrustedOutputs checks that a cache hit whose outputs do not verify
// runs again, and that an error other than ErrUntrusted fails the plan.
func TestUntrustedOutputs(t *testing.T) {
	src := files{"data.csv": "sha256:d1", "load.py": "sha256:l1", "train.py": "sha256:t1", "exe:python3": "sha256:py"}
	cfg := pipeline()
	rec := &recorded{cache: map[string]*state.Cache{}, pipelines: map[string]*state.Pipeline{}}
	st := store{}
	record(t, cfg, src, rec, st)
	var asked []string
	verify := func(_ context.Context, d string, made *provenance.Build) error {
		asked = append(asked, d)
		if made.Entry != "p.load.train" || made.Run == "" || made.Inputs["data"] != "sha256:d1" {
			t.Errorf("asked to verify %s as made by %+v", d, made)
		}
		if d == "sha256:out-load-train" {
			return fmt.Errorf("%w: not signed", ErrUntrusted)
		}
		return nil
	}
	p, err := Compute(context.Background(), cfg, rec, src, st, Options{Verify: verify})
	if err != nil {
		t.Fatal(err)
	}
	load, train := p.Pipelines[0].Steps[0], p.Pipelines[0].Steps[1]
	if got := string(load.Action) + ": " + reasons(load); got != "run: cached outputs no longer verify: train (signature does not verify: not signed)" {
		t.Errorf("load: %q", got)
	}
	if got := string(train.Action) + ": " + reasons(train); got != "run: upstream re-runs: load" {
		t.Errorf("train: %q", got)
	}
	if len(asked) != 1 {
		t.Errorf("verified %v; want only load's output (train re-runs anyway)", asked)
	}
	broken := func(context.Context, string, *provenance.Build) error { return errors.New("registry down") }
	if _, err := Compute(context.Background(), cfg, rec, src, st, Options{Verify: broken}); err == nil || !strings.Contains(err.Error(), "registry down") {
		t.Errorf("Compute with a failing Verify = %v, want the error", err)
	}
}

// TestReasonClipsLongValues keeps a parameter of megabytes out of the plan
// people read: its start and its length are shown, whole runes only.
func TestReasonClipsLongValues(t *testing.T) {
	long := `"` + strings.Repeat("é", 3<<20) + `"`
	got := Reason{Kind: ReasonParameter, Subject: "blob", Old: "1", New: long}.String()
	want := "parameter changed: blob 1 → \"" + strings.Repeat("é", 79) + "… (6291458 bytes)"
	if got != want {
		t.Errorf("got %q (%d bytes), want %q", got[:min(len(got), 300)], len(got), want)
	}
	if !utf8.ValidString(got) {
		t.Errorf("not UTF-8: %q", got)
	}
	short := Reason{Kind: ReasonParameter, Subject: "lr", Old: "0.1", New: "0.2"}.String()
	if short != "parameter changed: lr 0.1 → 0.2" {
		t.Errorf("short value: %q", short)
	}
}

// TestBaselineMoves plans a revert whose steps are all cached: no step
// runs, but the baseline, which holds the reverted declaration, moves, so
// that the next plan explains itself against what was applied last. An
// experiment never moves it, and a baseline that holds the plan's keys
// does not move.
func TestBaselineMoves(t *testing.T) {
	src := files{"data.csv": "sha256:d1", "load.py": "sha256:l1", "train.py": "sha256:t1", "exe:python3": "sha256:py"}
	cfg := pipeline()
	rec := &recorded{cache: map[string]*state.Cache{}, pipelines: map[string]*state.Pipeline{}}
	st := store{}
	record(t, cfg, src, rec, st)
	train := cfg.Pipelines["p"].Steps["train"]
	train.Parameters["lr"] = json.Number("0.2")
	record(t, cfg, src, rec, st) // lr 0.2 ran and is the baseline
	rec.pipelines["p"].SourceCommit = "c2"
	train.Parameters["lr"] = json.Number("0.1") // git revert

	p, err := Compute(context.Background(), cfg, rec, src, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := p.Pipelines[0].Baseline
	if b == nil || b.From != "c2" || strings.Join(b.Steps, ",") != "train" {
		t.Fatalf("baseline = %+v, want it to move from c2 for train", b)
	}
	if sum := p.Summary(); sum.Run != 0 || sum.Baselines != 1 || !p.Changes() {
		t.Errorf("summary = %+v, changes %v: want nothing to run, one baseline, a change", sum, p.Changes())
	}

	exp, err := Compute(context.Background(), cfg, rec, src, st, Options{Overrides: []Override{{Path: "p.lr", Value: 0.1}}})
	if err != nil {
		t.Fatal(err)
	}
	if exp.Pipelines[0].Baseline != nil || exp.Changes() {
		t.Errorf("an experiment moves the baseline: %+v", exp.Pipelines[0].Baseline)
	}

	// The baseline holds the plan's keys (as the apply of the revert
	// leaves it): nothing to do. A step that failed there moves it.
	for _, s := range p.Pipelines[0].Steps {
		rec.pipelines["p"].Steps[s.Name] = &state.StepState{Fingerprint: s.Fingerprint, Key: s.Key, Status: state.StatusCached, RunID: s.CachedFrom}
	}
	again, err := Compute(context.Background(), cfg, rec, src, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Pipelines[0].Baseline != nil || again.Changes() {
		t.Errorf("baseline = %+v, want none: the recorded keys are the plan's", again.Pipelines[0].Baseline)
	}
	rec.pipelines["p"].Steps["load"].Status = state.StatusFailed
	failed, err := Compute(context.Background(), cfg, rec, src, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b := failed.Pipelines[0].Baseline; b == nil || strings.Join(b.Steps, ",") != "load" {
		t.Errorf("baseline = %+v, want it to move for load, recorded as failed", b)
	}
}

// TestImagePinned: the key holds the digest a tag resolves to, so a tag
// that moves is an image change; an image that cannot be resolved fails
// the plan, naming the step and the image.
func TestImagePinned(t *testing.T) {
	cfg := pipeline()
	cfg.Pipelines["p"].Steps["load"].Image = "reg.example/base:1"
	src := files{"data.csv": "sha256:d1", "load.py": "sha256:l1", "train.py": "sha256:t1"}
	rec := &recorded{cache: map[string]*state.Cache{}, pipelines: map[string]*state.Pipeline{}}
	tags := map[string]string{"reg.example/base:1": "reg.example/base@sha256:aaa"}
	opts := Options{Images: func(_ context.Context, ref string) (string, error) {
		if d, ok := tags[ref]; ok {
			return d, nil
		}
		return "", errors.New("no such image")
	}}
	p, err := Compute(context.Background(), cfg, rec, src, store{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	load := p.Pipelines[0].Steps[0]
	if load.Fingerprint.Image != "reg.example/base@sha256:aaa" || load.Image == nil || load.Image.Digest() != "sha256:aaa" || !load.Image.Tagged() {
		t.Fatalf("load: fingerprint image %q, image %+v", load.Fingerprint.Image, load.Image)
	}
	if p.Pipelines[0].Steps[1].Image != nil {
		t.Errorf("train has no image, got %+v", p.Pipelines[0].Steps[1].Image)
	}
	// Recorded with the tag at aaa; the tag moves to bbb.
	rec.pipelines["p"] = &state.Pipeline{Pipeline: "p", Steps: map[string]*state.StepState{
		"load": {Fingerprint: load.Fingerprint, Key: load.Key, Status: state.StatusSucceeded, RunID: "r1"}}}
	tags["reg.example/base:1"] = "reg.example/base@sha256:bbb"
	p, err = Compute(context.Background(), cfg, rec, src, store{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := reasons(p.Pipelines[0].Steps[0]); got != "image changed: reg.example/base@sha256:aaa → reg.example/base@sha256:bbb" {
		t.Errorf("moved tag: %q", got)
	}
	cfg.Pipelines["p"].Steps["load"].Image = "reg.example/gone:1"
	_, err = Compute(context.Background(), cfg, rec, src, store{}, opts)
	if err == nil || err.Error() != "pipeline p: step load: image reg.example/gone:1: no such image" {
		t.Errorf("missing image: %v", err)
	}
}
