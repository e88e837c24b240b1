package schema

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"
)

func TestValidName(t *testing.T) {
	for _, name := range []string{"a", "get-started", "get_started", "train2", "a1-b2_c3", "x-1", strings.Repeat("a", 128)} {
		if !ValidName(name) {
			t.Errorf("ValidName(%q) = false", name)
		}
	}
	for _, name := range []string{"", "A", "Get", "get started", "1st", "-a", "_a", "a-", "a_", "a--b", "a__b", "a_-b", "a.b", "a/b", "..", "é", "a\x00", strings.Repeat("a", 129)} {
		if ValidName(name) {
			t.Errorf("ValidName(%q) = true", name)
		}
	}
}

// TestNamesAreOCIComponents checks the promise the rule makes: a name is
// a valid OCI repository path component (models/<model>) and tag, and
// splits nowhere zen splits a path (PIPELINE.STEP.OUTPUT, --set, a
// folder).
func TestNamesAreOCIComponents(t *testing.T) {
	component := regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`)
	tag := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	for _, name := range []string{"a", "get-started", "get_started", "a1-b2_c3", strings.Repeat("ab-", 42) + "a"} {
		if !ValidName(name) {
			t.Fatalf("%q is not a name", name)
		}
		if !component.MatchString(name) || !tag.MatchString(name) || strings.ContainsAny(name, "./=: ") {
			t.Errorf("%q is a name but not safe as an OCI component, a tag or a path part", name)
		}
	}
}

func TestSuggestName(t *testing.T) {
	for in, want := range map[string]string{
		"Get Started": "get-started",
		"get.data":    "get-data",
		"get--data":   "get-data",
		"get__data":   "get_data",
		"get_-data":   "get-data",
		"train-":      "train",
		"_private":    "private",
		"1st":         "step-1st",
		"TrainModel":  "trainmodel",
		"":            "",
		"--":          "",
		"Größe":       "",
	} {
		if got := SuggestName("step", in); got != want {
			t.Errorf("SuggestName(%q) = %q, want %q", in, got, want)
		}
		if got := SuggestName("step", in); got != "" && !ValidName(got) {
			t.Errorf("SuggestName(%q) = %q, which is no name", in, got)
		}
	}
}

// kebab is a pipeline, its steps, inputs, outputs, a model, a stage and
// a stack, all in kebab-case, referenced with brackets.
const kebab = `package zen

default_stack: "my-stack"
stacks: "my-stack": {orchestrator: flavor: "local", artifact_store: flavor: "oci-layout"}

pipelines: "get-started": {
	parameters: train: {"n-est": 100, max_depth: 5}
	steps: {
		"get-data": {
			run: ["sh", "get.sh"]
			outputs: "raw-data": type: "file"
		}
		"train-model": {
			run: ["sh", "train.sh"]
			inputs: "in-data": steps["get-data"].outputs["raw-data"]
			parameters: pipelines["get-started"].parameters.train
			outputs: "model-file": {type: "model", model: "rf-model"}
		}
	}
}

models: "rf-model": {
	versions: "1.0.0": {}
	stages: "pre-prod": "1.0.0"
	gates: "pre-prod": "train-model.acc >= 0.5"
}
`

func TestLoadKebabNames(t *testing.T) {
	cfg, err := Load(write(t, map[string]string{"zen.cue": kebab}))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Pipelines["get-started"]
	if p == nil || strings.Join(p.Order, " ") != "get-data train-model" {
		t.Fatalf("pipeline get-started: %+v", p)
	}
	in := p.Steps["train-model"].Inputs["in-data"]
	if in.Kind != InputStep || in.Step != "get-data" || in.Output != "raw-data" {
		t.Errorf("input in-data = %+v", in)
	}
	if m := cfg.Models["rf-model"]; m.Pipeline != "get-started" || m.Step != "train-model" || m.Output != "model-file" || m.Stages["pre-prod"] != "1.0.0" {
		t.Errorf("model rf-model = %+v", m)
	}
	if cfg.DefaultStack != "my-stack" {
		t.Errorf("default stack %q", cfg.DefaultStack)
	}
}

// TestLoadBadNames checks that each bad name is one error, at the name,
// stating the rule and the name to write: not "field not allowed" for
// it and everything beneath it.
func TestLoadBadNames(t *testing.T) {
	rule := NameRule
	for _, tt := range []struct {
		name, from, to, want string
	}{
		{"pipeline upper", "get-started", "Get-Started", `zen.cue:6:12: pipeline name "Get-Started": ` + rule + `; write "get-started"`},
		{"pipeline space", "get-started", "get started", `zen.cue:6:12: pipeline name "get started": ` + rule + `; write "get-started"`},
		{"pipeline digit", "get-started", "2get", `zen.cue:6:12: pipeline name "2get": ` + rule + `; write "pipeline-2get"`},
		{"pipeline dot", "get-started", "get.started", `zen.cue:6:12: pipeline name "get.started": ` + rule + `; write "get-started"`},
		{"pipeline empty", "get-started", "", `zen.cue:6:12: pipeline name "": ` + rule + `; write a name such as "get-started"`},
		{"step trailing dash", "get-data", "get-", `zen.cue:9:3: step name "get-": ` + rule + `; write "get"`},
		{"step double dash", "get-data", "get--data", `zen.cue:9:3: step name "get--data": ` + rule + `; write "get-data"`},
		{"step double underscore", "get-data", "get__data", `zen.cue:9:3: step name "get__data": ` + rule + `; write "get_data"`},
		{"step leading underscore", "get-data", "_get", `zen.cue:9:3: step name "_get": ` + rule + `; write "get"`},
		{"output slash", "raw-data", "raw/data", `zen.cue:11:13: output name "raw/data": ` + rule + `; write "raw-data"`},
		{"input dotdot", "in-data", "..", `zen.cue:15:12: input name "..": ` + rule + `; write a name such as "raw-data"`},
		{"model upper", "rf-model", "RF-Model", `zen.cue:22:9: model name "RF-Model": ` + rule + `; write "rf-model"`},
		{"stage dot", "pre-prod", "pre.prod", `zen.cue:24:10: stage name "pre.prod": ` + rule + `; write "pre-prod"`},
		{"stack upper", "my-stack", "My-Stack", `zen.cue:4:9: stack name "My-Stack": ` + rule + `; write "my-stack"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The name changes everywhere it is written, references too.
			src := strings.ReplaceAll(kebab, `"`+tt.from+`"`, fmt.Sprintf("%q", tt.to))
			_, err := Load(write(t, map[string]string{"zen.cue": src}))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n%v\nwant exactly:\n%s", err, tt.want)
			}
		})
	}
}

// TestLoadBadVersion checks that a version an OCI tag cannot be is one
// error too, wherever it is written.
func TestLoadBadVersion(t *testing.T) {
	src := strings.ReplaceAll(kebab, `"1.0.0"`, `"1.0/0"`)
	src = strings.Replace(src, `versions: "1.0/0": {}`, `versions: "1.0/0": {description: "x", card: "y"}`, 1)
	_, err := Load(write(t, map[string]string{"zen.cue": src}))
	want := `zen.cue:23:12: model rf-model version "1.0/0": ` + VersionRule + `; write a version such as "1.0.0"`
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant exactly:\n%s", err, want)
	}
}

// TestLoadBadNameNoCascade is the report that started the rule: a
// pipeline whose name the schema's pattern refused had every field beneath
// it reported as not allowed. Now it is one error, whatever it holds.
func TestLoadBadNameNoCascade(t *testing.T) {
	src := `package zen

pipelines: "Get Started": {
	parameters: {seed: 1, train: {n_est: 100, max_depth: 5}}
	steps: {
		prepare: {run: ["a", "b"], outputs: {train: type: "file", test: type: "file"}}
		featurize: {run: ["a", "b", "c"], inputs: {train: steps.prepare.outputs.train, test: steps.prepare.outputs.test}, outputs: f: type: "file"}
		train: {run: ["a"], inputs: f: steps.featurize.outputs.f, parameters: pipelines["Get Started"].parameters.train, outputs: m: {type: "model", model: "m"}}
	}
}
models: m: versions: "1": {}
`
	_, err := Load(write(t, map[string]string{"zen.cue": src}))
	want := `zen.cue:3:12: pipeline name "Get Started": ` + NameRule + `; write "get-started"`
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant exactly:\n%s", err, want)
	}
}

// TestSchemaVetsNames checks that the schema saved into a package makes
// `cue vet` refuse a bad name too, without zen.
func TestSchemaVetsNames(t *testing.T) {
	vet := func(src string) error {
		dir := write(t, map[string]string{"zen.cue": src, "zen_schema.cue": string(Source)})
		insts := load.Instances([]string{"."}, &load.Config{Dir: dir})
		if err := insts[0].Err; err != nil {
			return err
		}
		return cuecontext.New().BuildInstance(insts[0]).Validate(cue.Concrete(true))
	}
	if err := vet(kebab); err != nil {
		t.Fatalf("kebab-case names fail cue vet: %v", err)
	}
	for from, to := range map[string]string{
		"get-started": "Get Started",
		"get-data":    "get--data",
		"in-data":     "in.data",
		"raw-data":    "raw/data",
		"rf-model":    "RF",
		"pre-prod":    "Pre",
		"my-stack":    "x-",
		"1.0.0":       "1.0/0",
	} {
		src := strings.ReplaceAll(kebab, `"`+from+`"`, fmt.Sprintf("%q", to))
		if err := vet(src); err == nil || !strings.Contains(err.Error(), "out of bound =~") {
			t.Errorf("cue vet takes %s: %v", to, err)
		}
	}
}

// TestNameRuleFromSchema checks that zen reads the rule the schema has:
// the pattern and length CUE evaluates #NamePattern and #NameMaxLength to.
func TestNameRuleFromSchema(t *testing.T) {
	ctx := cuecontext.New()
	v := ctx.CompileBytes(Source)
	pattern, err := v.LookupPath(cue.MakePath(cue.Def("#NamePattern"))).String()
	if err != nil {
		t.Fatal(err)
	}
	max, err := v.LookupPath(cue.MakePath(cue.Def("#NameMaxLength"))).Int64()
	if err != nil {
		t.Fatal(err)
	}
	version, err := v.LookupPath(cue.MakePath(cue.Def("#VersionPattern"))).String()
	if err != nil {
		t.Fatal(err)
	}
	if r := nameRule(); r.re.String() != pattern || r.max != int(max) || r.version.String() != version {
		t.Errorf("zen checks %q, %d, versions %q; CUE has %q, %d, %q", r.re, r.max, r.version, pattern, max, version)
	}
	// #Name in CUE and ValidName agree, name by name.
	name := v.LookupPath(cue.MakePath(cue.Def("#Name")))
	for _, n := range []string{"get-started", "a_b", "A", "a--b", "a.b", "", strings.Repeat("a", 128), strings.Repeat("a", 129)} {
		if inCUE := name.Unify(ctx.Encode(n)).Err() == nil; inCUE != ValidName(n) {
			t.Errorf("%q: CUE's #Name says %v, ValidName %v", n, inCUE, ValidName(n))
		}
	}
	ver := v.LookupPath(cue.MakePath(cue.Def("#Version")))
	for _, n := range []string{"1.0.0", "2024.06.1-rc1", "v1", "_x", "", ".1", "-1", "1.0/0", strings.Repeat("1", 128), strings.Repeat("1", 129)} {
		if inCUE := ver.Unify(ctx.Encode(n)).Err() == nil; inCUE != ValidVersion(n) {
			t.Errorf("%q: CUE's #Version says %v, ValidVersion %v", n, inCUE, ValidVersion(n))
		}
	}
}
