package schema

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParseOverride(t *testing.T) {
	for _, bad := range []string{"x", "x=1", "a..b=1", "a.b.=1", ".a=1"} {
		if _, err := ParseOverride(bad); err == nil {
			t.Errorf("ParseOverride(%q) succeeded", bad)
		}
	}
	for s, want := range map[string]Override{
		"training.lr=0.5":                 {Path: "training.lr", Value: "0.5"},
		"get-started.train.n-est=50":      {Path: "get-started.train.n-est", Value: "50"},
		"p.a.b.c.d=x=y":                   {Path: "p.a.b.c.d", Value: "x=y"},
		`p.s.opts={depth: 3, "a-b": "c"}`: {Path: "p.s.opts", Value: `{depth: 3, "a-b": "c"}`},
	} {
		if o, err := ParseOverride(s); err != nil || o != want {
			t.Errorf("ParseOverride(%q) = %+v, %v; want %+v", s, o, err, want)
		}
	}
}

func TestOverride(t *testing.T) {
	dir := write(t, map[string]string{"zen.cue": good, "data/features.csv": "a\n"})
	_, err := Load(dir, Override{Path: "training.n_estimators", Value: "200"}, Override{Path: "training.train.mode", Value: "x"})
	if want := "--set training.train.mode: step train of pipeline training has no parameter mode (parameters: n_estimators)"; err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	cfg, err := Load(dir, Override{Path: "training.n_estimators", Value: "200"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Pipelines["training"].Steps["train"].Parameters["n_estimators"]; got.(interface{ String() string }).String() != "200" {
		t.Errorf("step parameter after --set = %v, want 200 (through the reference)", got)
	}
	if want := []Set{{Path: "training.n_estimators", Field: "pipelines.training.parameters.n_estimators", Value: 200.0}}; !reflect.DeepEqual(cfg.Sets, want) {
		t.Errorf("Sets = %+v, want %+v", cfg.Sets, want)
	}
}

// nested is a DVC-style pipeline: its parameters nested as params.yaml
// has them, a step reading one struct whole and another reading one
// field, and a step parameter of its own.
const nested = `package zen

pipelines: "get-started": {
	parameters: {
		seed: 1
		name: "rf"
		train: {n_est: 100, max_depth: 5, "min-split": 0.5, opts: {deep: true, tags: ["a"]}}
	}
	steps: {
		featurize: {
			run: ["true"]
			parameters: {max_features: 200, seed: pipelines["get-started"].parameters.seed}
		}
		train: {
			run: ["true"]
			parameters: pipelines["get-started"].parameters.train
		}
		report: {
			run: ["true"]
			parameters: depth: pipelines["get-started"].parameters.train.max_depth
		}
	}
}
`

func TestOverrideNested(t *testing.T) {
	dir := write(t, map[string]string{"zen.cue": nested})
	load := func(sets ...string) (*Config, error) {
		os, err := ParseOverrides(sets)
		if err != nil {
			t.Fatal(err)
		}
		return Load(dir, os...)
	}
	asJSON := func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	for _, tt := range []struct {
		sets  []string
		field string // the field set
		check map[string]string
	}{
		// A nested field: its siblings stay, and every step that reads
		// it, whole or by field, sees the new value.
		{[]string{"get-started.train.n_est=50"}, `pipelines."get-started".parameters.train.n_est`, map[string]string{
			"train":  `{"max_depth":5,"min-split":0.5,"n_est":50,"opts":{"deep":true,"tags":["a"]}}`,
			"report": `{"depth":5}`,
		}},
		{[]string{"get-started.train.max_depth=8"}, `pipelines."get-started".parameters.train.max_depth`, map[string]string{
			"train":  `{"max_depth":8,"min-split":0.5,"n_est":100,"opts":{"deep":true,"tags":["a"]}}`,
			"report": `{"depth":8}`,
		}},
		// Kebab-case, three levels down, an int where a float is declared.
		{[]string{"get-started.train.min-split=1", "get-started.train.opts.deep=false"}, `pipelines."get-started".parameters.train."min-split"`, map[string]string{
			"train": `{"max_depth":5,"min-split":1,"n_est":100,"opts":{"deep":false,"tags":["a"]}}`,
		}},
		// A step's own parameter, when the pipeline has none of the name.
		{[]string{"get-started.featurize.max_features=50"}, `pipelines."get-started".steps.featurize.parameters.max_features`, map[string]string{
			"featurize": `{"max_features":50,"seed":1}`,
		}},
		// A string parameter takes the text as typed.
		{[]string{"get-started.name=123"}, `pipelines."get-started".parameters.name`, nil},
		// A struct whole, replaced.
		{[]string{`get-started.train={n_est: 7, max_depth: 2}`}, `pipelines."get-started".parameters.train`, map[string]string{
			"train":  `{"max_depth":2,"n_est":7}`,
			"report": `{"depth":2}`,
		}},
	} {
		cfg, err := load(tt.sets...)
		if err != nil {
			t.Errorf("%v: %v", tt.sets, err)
			continue
		}
		if len(cfg.Sets) != len(tt.sets) || cfg.Sets[0].Field != tt.field {
			t.Errorf("%v: Sets = %+v, want the first at %s", tt.sets, cfg.Sets, tt.field)
		}
		for step, want := range tt.check {
			if got := asJSON(cfg.Pipelines["get-started"].Steps[step].Parameters); got != want {
				t.Errorf("%v: step %s has %s, want %s", tt.sets, step, got, want)
			}
		}
	}
	cfg, err := load("get-started.name=123")
	if err != nil || cfg.Pipelines["get-started"].Parameters["name"] != "123" || cfg.Sets[0].Value != "123" {
		t.Errorf("a string parameter set to 123: %v, %+v", err, cfg)
	}
	cfg, err = load("get-started.train.n_est=50")
	if err != nil || cfg.Sets[0].Value != 50.0 {
		t.Errorf("the value set: %+v, %v", cfg.Sets, err)
	}
}

func TestOverrideNestedErrors(t *testing.T) {
	dir := write(t, map[string]string{"zen.cue": nested})
	for set, want := range map[string]string{
		"get-started.train.n_estimators=50": "--set get-started.train.n_estimators: pipeline get-started has no parameter train.n_estimators (train holds: max_depth, min-split, n_est, opts)",
		"get-started.train.opts.x.y=1":      "--set get-started.train.opts.x.y: pipeline get-started has no parameter train.opts.x.y (train.opts holds: deep, tags)",
		"get-started.train.n_est.x=1":       "--set get-started.train.n_est.x: pipeline get-started has no parameter train.n_est.x: train.n_est is 100, not a struct (set it whole: train.n_est=VALUE)",
		"get-started.nope=1":                "--set get-started.nope: pipeline get-started has no parameter nope (parameters: name, seed, train; its steps' own: featurize.max_features, featurize.seed, report.depth, train.max_depth, train.min-split, train.n_est, train.opts)",
		"get-started.report=1":              "--set get-started.report: pipeline get-started has no parameter report (parameters: name, seed, train; its steps' own: featurize.max_features, featurize.seed, report.depth, train.max_depth, train.min-split, train.n_est, train.opts; step report is a step: name its parameter, get-started.report.PARAM)",
		"get-started.featurize.nope=1":      "--set get-started.featurize.nope: step featurize of pipeline get-started has no parameter nope (parameters: max_features, seed)",
		"get_started.train.n_est=50":        "--set get_started.train.n_est: no pipeline get_started (pipelines: get-started)",
		"get-started.train.n_est=abc":       "--set get-started.train.n_est: abc is not an int, as declared at zen.cue:7:11 (100)",
		"get-started.train.n_est=2.5":       "--set get-started.train.n_est: 2.5 is a number, not an int, as declared at zen.cue:7:11 (100)",
		`get-started.train.opts.deep="no"`:  `--set get-started.train.opts.deep: "\"no\"" is a string, not a bool, as declared at zen.cue:7:62 (true)`,
		"get-started.train.opts.tags=1":     "--set get-started.train.opts.tags: 1 is an int, not a list, as declared at zen.cue:7:74 ([\"a\"])",
		"get-started.train=5":               `--set get-started.train: 5 is an int, not a struct, as declared at zen.cue:7:3 ({"n_est":100,"max_depth":5,"min-split":0.5,"opts":{"deep"…)`,
	} {
		o, err := ParseOverride(set)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Load(dir, o)
		if err == nil || err.Error() != want {
			t.Errorf("--set %s:\n got %v\nwant %s", set, err, want)
		}
	}
}

// TestOverrideKeepsConstraints checks that a constraint declared beside
// a value stays, and checks the value set; and that a value not written
// under the pipeline (a reference) cannot be replaced without a word.
func TestOverrideKeepsConstraints(t *testing.T) {
	src := `package zen

_defaults: {lr: 0.1}
pipelines: p: {
	parameters: {
		depth: int & >0 & <=10
		depth: 3
		mode: *"fast" | "slow"
		opts: _defaults
	}
	steps: s: {run: ["true"], parameters: pipelines.p.parameters}
}
`
	dir := write(t, map[string]string{"zen.cue": src})
	load := func(set string) (*Config, error) {
		o, err := ParseOverride(set)
		if err != nil {
			t.Fatal(err)
		}
		return Load(dir, o)
	}
	if cfg, err := load("p.depth=7"); err != nil || cfg.Sets[0].Value != 7.0 {
		t.Errorf("depth=7: %v", err)
	}
	if _, err := load("p.depth=11"); err == nil || !strings.Contains(err.Error(), "pipelines.p.parameters.depth: invalid value 11 (out of bound <=10)") {
		t.Errorf("depth=11 passes the bound: %v", err)
	}
	if cfg, err := load("p.mode=slow"); err != nil || cfg.Pipelines["p"].Parameters["mode"] != "slow" {
		t.Errorf("mode=slow: %v", err)
	}
	if _, err := load("p.mode=medium"); err == nil || !strings.Contains(err.Error(), "pipelines.p.parameters.mode") {
		t.Errorf("mode=medium passes the enum: %v", err)
	}
	want := `--set p.opts.lr: pipelines.p.parameters.opts.lr has no value written under pipelines.p.parameters to replace (its value comes from zen.cue:3:13)`
	if _, err := load("p.opts.lr=0.2"); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("a field from a reference:\n got %v\nwant %s…", err, want)
	}
}
