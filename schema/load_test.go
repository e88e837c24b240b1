package schema

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"
)

// write creates the files of a repository in a temp dir.
func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const good = `package zen

pipelines: training: {
	parameters: {test_fraction: 0.2, n_estimators: 100}
	steps: {
		load: {
			run: ["python3", "steps/load.py"]
			inputs: dataset: file: "data/features.csv"
			outputs: {train: type: "table", test: type: "table"}
		}
		train: {
			run: ["python3", "steps/train.py"]
			inputs: data: steps.load.outputs.train
			parameters: n_estimators: pipelines.training.parameters.n_estimators
			outputs: model: {type: "model", model: "fraud-detector"}
			retries: {attempts: 2, except_exit_codes: [3], backoff: "10ms"}
			timeout: "90s"
			env: {MODE: "fast", TOKEN: {secret: "api_token"}}
		}
		evaluate: {
			run: ["python3", "steps/evaluate.py"]
			inputs: {model: steps.train.outputs.model, test: steps.load.outputs.test}
			outputs: report: type: "json"
			cache: false
		}
	}
}

stacks: {
	local: {orchestrator: flavor: "local", artifact_store: flavor: "oci-layout"}
	shared: {orchestrator: flavor: "local", artifact_store: {flavor: "oci", repository: "127.0.0.1:5000/ml"}, images: verify: key: "images.pub"}
}

models: "fraud-detector": {}
`

func TestLoad(t *testing.T) {
	dir := write(t, map[string]string{"zen.cue": good, "data/features.csv": "a,b\n1,2\n"})
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Pipelines["training"]
	if got, want := strings.Join(p.Order, " "), "load train evaluate"; got != want {
		t.Errorf("order = %q, want %q", got, want)
	}
	train := p.Steps["train"]
	in := train.Inputs["data"]
	if in.Kind != InputStep || in.Step != "load" || in.Output != "train" || in.Type != "table" {
		t.Errorf("input data = %+v", in)
	}
	if got := train.Parameters["n_estimators"]; got == nil || got.(interface{ String() string }).String() != "100" {
		t.Errorf("n_estimators = %v", got)
	}
	if train.Retries.Attempts != 2 || train.Retries.Backoff.String() != "10ms" || train.Retries.ExceptExitCodes[0] != 3 {
		t.Errorf("retries = %+v", train.Retries)
	}
	if train.Timeout.String() != "1m30s" {
		t.Errorf("timeout = %v", train.Timeout)
	}
	if train.Env["TOKEN"].Secret != "api_token" || train.Env["MODE"].Value != "fast" {
		t.Errorf("env = %+v", train.Env)
	}
	if train.Outputs["model"].Model != "fraud-detector" {
		t.Errorf("model binding = %+v", train.Outputs["model"])
	}
	if !p.Steps["load"].Cache || p.Steps["evaluate"].Cache {
		t.Errorf("cache defaults wrong")
	}
	if got := p.Steps["load"].Inputs["dataset"]; got.Kind != InputFile || got.Path != "data/features.csv" {
		t.Errorf("dataset = %+v", got)
	}
	if cfg.DefaultStack != "local" || cfg.Stacks["shared"].ArtifactStore.String("repository") != "127.0.0.1:5000/ml" {
		t.Errorf("stacks = %+v", cfg.Stacks)
	}
	if cfg.Stacks["shared"].ImageKey != "images.pub" || cfg.Stacks["local"].ImageKey != "" {
		t.Errorf("image keys = %q, %q; want images.pub and none", cfg.Stacks["shared"].ImageKey, cfg.Stacks["local"].ImageKey)
	}
}

func TestLoadErrors(t *testing.T) {
	base := "package zen\n\n"
	tests := []struct {
		name, src string
		want      string // the whole first line of the error
	}{
		{"syntax", base + `pipelines: p: steps: s: {run: ["x"`, "zen.cue:3:"},
		{"unknown field", base + `pipelines: p: steps: s: {run: ["x"], bogus: 1}`, `zen.cue:3:38: pipelines.p.steps.s.bogus: field not allowed`},
		{"unknown top-level field", base + `pipeline: {}`, `zen.cue:3:1: pipeline: field not allowed`},
		{"wrong type", base + `pipelines: p: steps: s: {run: "x"}`, `zen.cue:3:31: pipelines.p.steps.s.run: conflicting values "x" and [string,...string] (mismatched types string and list)`},
		{"missing step", base + `pipelines: p: steps: s: {run: ["x"], inputs: a: steps.nope.outputs.o}`, `zen.cue:3:55: pipelines.p.steps.s.inputs.a: undefined field: nope`},
		{"missing output", base + "pipelines: p: steps: {\n\tt: {run: [\"x\"], outputs: o: type: \"file\"}\n\ts: {run: [\"x\"], inputs: a: steps.t.outputs.zz}\n}", `zen.cue:5:45: pipelines.p.steps.s.inputs.a: undefined field: zz`},
		{"cycle", base + "pipelines: p: steps: {\n\ta: {run: [\"x\"], inputs: i: steps.b.outputs.o, outputs: o: type: \"file\"}\n\tb: {run: [\"x\"], inputs: i: steps.a.outputs.o, outputs: o: type: \"file\"}\n}", `zen.cue:5:26: pipelines.p.steps.b.inputs.i: cycle: b → a → b`},
		{"missing input file", base + `pipelines: p: steps: s: {run: ["x"], inputs: d: file: "data/nope.csv"}`, `zen.cue:3:49: pipelines.p.steps.s.inputs.d.file: data/nope.csv: no such file or directory`},
		{"path leaves repo", base + `pipelines: p: steps: s: {run: ["x"], inputs: d: dir: "../etc"}`, `zen.cue:3:49: pipelines.p.steps.s.inputs.d.dir: ../etc: path leaves the repository`},
		{"unknown flavor", base + `default_stack: "k"` + "\n" + `stacks: k: {orchestrator: flavor: "k8s", artifact_store: flavor: "oci-layout"}`, `zen.cue:4:27: stacks.k.orchestrator.flavor: unknown orchestrator flavor "k8s" (known: local, slurm)`},
		{"oci without repository", base + `stacks: local: {orchestrator: flavor: "local", artifact_store: flavor: "oci"}`, `zen.cue:3:48: stacks.local.artifact_store.repository: an oci artifact store needs a repository, such as "registry.example.com/ml"`},
		{"unknown default stack", base + `default_stack: "gpu"` + "\n" + `stacks: local: {orchestrator: flavor: "local", artifact_store: flavor: "oci-layout"}`, `zen.cue:3:1: default_stack: unknown stack "gpu" (stacks: local)`},
		{"empty image key", base + `stacks: local: {orchestrator: flavor: "local", artifact_store: flavor: "oci-layout", images: verify: key: ""}`, `zen.cue:3:107: stacks.local.images.verify.key: invalid value "" (out of bound !="")`},
		{"unknown image field", base + `stacks: local: {orchestrator: flavor: "local", artifact_store: flavor: "oci-layout", images: sign: true}`, `zen.cue:3:94: stacks.local.images.sign: field not allowed`},
		{"no default stack", base + `stacks: k: {orchestrator: flavor: "local", artifact_store: flavor: "oci-layout"}`, `zen.cue:3:1: default_stack: no stack named "local", the default: add one or set default_stack to one of k`},
		{"bad timeout", base + `pipelines: p: steps: s: {run: ["x"], timeout: "5 min"}`, `zen.cue:3:38: pipelines.p.steps.s.timeout: invalid timeout "5 min": want a positive Go duration such as "30m"`},
		{"network without image", base + `pipelines: p: steps: s: {run: ["x"], network: true}`, `zen.cue:3:38: pipelines.p.steps.s.network: network applies to a step that runs in an image: add image, or remove network (a step on the host reaches what the host does)`},
		{"bad name", base + `pipelines: "My Pipe": steps: s: run: ["x"]`, `zen.cue:3:12: pipeline name "My Pipe": names are lowercase letters, digits, '-' and '_', starting with a letter, with no '-' or '_' at the end or two in a row; write "my-pipe"`},
		{"incomplete", base + `pipelines: p: steps: s: {run: ["x"], parameters: n: int}`, `zen.cue:3:53: pipelines.p.steps.s.parameters.n: incomplete value int`},
		{"wrong input type", base + `pipelines: p: steps: s: {run: ["x"], inputs: k: {file: 3}}`, `zen.cue:3:56: pipelines.p.steps.s.inputs.k.file: conflicting values 3 and string (mismatched types int and string)`},
		// Hostile input: a ref written by hand, code globs that leave the
		// repository or match nothing, names and numbers that the schema
		// bounds, bytes that are not UTF-8, a gate of NaN.
		{"ref to no step", base + `pipelines: p: steps: s: {run: ["x"], inputs: i: {ref: "p.nope.o"}}`, `zen.cue:3:46: pipelines.p.steps.s.inputs.i: no step nope in pipeline p`},
		{"ref to no output", base + "pipelines: p: steps: {\n\tt: {run: [\"x\"], outputs: o: type: \"file\"}\n\ts: {run: [\"x\"], inputs: i: {ref: \"p.t.zz\"}}\n}", `zen.cue:5:26: pipelines.p.steps.s.inputs.i: step t has no output zz (outputs: o)`},
		{"ref malformed", base + `pipelines: p: steps: s: {run: ["x"], inputs: i: {ref: "p..o"}}`, `zen.cue:3:46: pipelines.p.steps.s.inputs.i: ref "p..o": want PIPELINE.STEP.OUTPUT`},
		{"code leaves repo mid-glob", base + `pipelines: p: steps: s: {run: ["x"], code: ["**/../../etc/passwd"]}`, `zen.cue:3:45: pipelines.p.steps.s.code[0]: **/../../etc/passwd: path leaves the repository`},
		{"code absolute", base + `pipelines: p: steps: s: {run: ["x"], code: ["/etc/*"]}`, `zen.cue:3:45: pipelines.p.steps.s.code[0]: /etc/*: path must be relative to the repository root`},
		{"code syntax", base + `pipelines: p: steps: s: {run: ["x"], code: ["[a-"]}`, `zen.cue:3:45: pipelines.p.steps.s.code[0]: "[a-": syntax error in pattern`},
		{"code matches nothing", base + `pipelines: p: steps: s: {run: ["x"], code: ["zen.cue", "src/**/*.py"]}`, `zen.cue:3:56: pipelines.p.steps.s.code[1]: "src/**/*.py" matches no file`},
		{"secret dot dot", base + `pipelines: p: steps: s: {run: ["x"], env: K: secret: ".."}`, `zen.cue:3:46: pipelines.p.steps.s.env.K: conflicting values {secret:".."} and string`},
		{"cpus beyond int32", base + `pipelines: p: steps: s: {run: ["x"], resources: cpus: 99999999999999999999}`, `zen.cue:3:55: pipelines.p.steps.s.resources.cpus: invalid value 99999999999999999999 (out of bound <=2147483647)`},
		{"exit code beyond 255", base + `pipelines: p: steps: s: {run: ["x"], retries: {attempts: 1, except_exit_codes: [256]}}`, `zen.cue:3:47: pipelines.p.steps.s.retries: conflicting values`},
		{"not UTF-8", base + "pipelines: p: steps: s: run: [\"caf\xe9\"]", `zen.cue:3:35: invalid UTF-8 (byte 0xe9): CUE files are UTF-8`},
		{"NUL in a path", base + `pipelines: p: steps: s: {run: ["x"], inputs: d: file: "data/x\u0000.csv"}`, `zen.cue:3:49: pipelines.p.steps.s.inputs.d.file: "data/x\x00.csv": a path cannot hold a NUL byte`},
		{"structural cycle in a hidden field", base + "_x: {y: _x}\npipelines: p: {parameters: x: _x, steps: s: run: [\"x\"]}", `zen.cue:3:6: _x.y: structural cycle`},
		{"structural cycle in a definition", base + "#X: {y: #X}\npipelines: p: {parameters: x: #X, steps: s: run: [\"x\"]}", `zen.cue:3:6: #X.y: structural cycle`},
		{"name of 129 characters", base + `pipelines: p: steps: ` + strings.Repeat("s", 129) + `: run: ["x"]`, `zen.cue:3:22: step name "` + strings.Repeat("s", 40) + `"…: names are at most 128 characters, this one has 129`},
		{"stage of 129 characters", base + `models: m: {versions: "1": {}, stages: ` + strings.Repeat("s", 129) + `: "1"}`, `zen.cue:3:40: stage name "` + strings.Repeat("s", 40) + `"…: names are at most 128 characters, this one has 129`},
		{"gate of NaN", base + "pipelines: p: steps: s: {run: [\"x\"], outputs: m: {type: \"model\", model: \"m\"}}\nmodels: m: {versions: \"1\": {}, stages: prod: \"1\", gates: prod: \"acc >= NaN\"}", `zen.cue:4:58: models.m.gates.prod: gate "acc >= NaN": "NaN": want a finite number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := write(t, map[string]string{"zen.cue": tt.src})
			_, err := Load(dir)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			first := strings.SplitN(err.Error(), "\n", 2)[0]
			if !strings.HasPrefix(first, tt.want) {
				t.Errorf("error:\n%s\nwant first line starting with:\n%s", err, tt.want)
			}
		})
	}
}

func TestLoadNoFiles(t *testing.T) {
	_, err := Load(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "run `zen init`") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadCache(t *testing.T) {
	dir := write(t, map[string]string{"zen.cue": good, "data/features.csv": "a\n", "extra.cue": "package zen\n"})
	first, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".zen", "cache", "config.json")); err != nil {
		t.Fatalf("no cache written: %v", err)
	}
	second, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := first.Pipelines["training"].Steps["train"].Parameters["n_estimators"], second.Pipelines["training"].Steps["train"].Parameters["n_estimators"]; a.(interface{ String() string }).String() != b.(interface{ String() string }).String() {
		t.Fatalf("cached load differs: %v vs %v", a, b)
	}
	// Each kind of change is seen: a file's content, a new file, a removed
	// file, an override, and a check outside CUE (a missing input).
	for _, tt := range []struct {
		name   string
		change func()
		want   string
	}{
		{"content", func() { os.WriteFile(filepath.Join(dir, "extra.cue"), []byte("package zen\nbogus: 1\n"), 0o644) }, "extra.cue:2:1: bogus: field not allowed"},
		{"new file", func() {
			os.WriteFile(filepath.Join(dir, "extra.cue"), []byte("package zen\n"), 0o644)
			os.WriteFile(filepath.Join(dir, "more.cue"), []byte("package zen\nmore: 1\n"), 0o644)
		}, "more.cue:2:1: more: field not allowed"},
		{"removed file", func() { os.Remove(filepath.Join(dir, "more.cue")); os.Remove(filepath.Join(dir, "extra.cue")) }, ""},
		{"missing input", func() { os.Remove(filepath.Join(dir, "data/features.csv")) }, "zen.cue:8:"},
	} {
		Load(dir) // fill the cache
		tt.change()
		_, err := Load(dir)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want prefix %q", tt.name, err, tt.want)
		}
	}
	os.WriteFile(filepath.Join(dir, "data/features.csv"), []byte("a\n"), 0o644)
	if _, err := Load(dir, Override{Path: "training.n_estimators", Value: "7"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Pipelines["training"].Parameters["n_estimators"]; got.(interface{ String() string }).String() != "100" {
		t.Errorf("an override leaked through the cache: %v", got)
	}
}

// TestSchemaInPackage checks what `zen schema` promises: saved into a
// repository's package, the schema makes plain CUE (cue vet) check it.
func TestSchemaInPackage(t *testing.T) {
	vet := func(src string) error {
		dir := write(t, map[string]string{"zen.cue": src, "zen_schema.cue": string(Source), "data/features.csv": "a\n"})
		insts := load.Instances([]string{"."}, &load.Config{Dir: dir})
		if err := insts[0].Err; err != nil {
			return err
		}
		return cuecontext.New().BuildInstance(insts[0]).Validate(cue.Concrete(true))
	}
	if err := vet(good); err != nil {
		t.Fatalf("a good repository fails: %v", err)
	}
	bad := strings.Replace(good, `retries: {attempts: 2`, `bogus: 1, retries: {attempts: 2`, 1)
	if err := vet(bad); err == nil || !strings.Contains(err.Error(), "bogus: field not allowed") {
		t.Fatalf("an unknown field passes: %v", err)
	}
}

func TestLoadModels(t *testing.T) {
	src := good + `
models: "fraud-detector": {
	versions: {"1.0.0": {}, "1.1.0": {description: "more trees"}}
	stages: production: "1.0.0"
	gates: production: "roc_auc >= 0.85 && evaluate.loss < 1"
}
`
	cfg, err := Load(write(t, map[string]string{"zen.cue": src, "data/features.csv": "a\n"}))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Models["fraud-detector"]
	if m.Pipeline != "training" || m.Step != "train" || m.Output != "model" {
		t.Errorf("binding = %s.%s.%s", m.Pipeline, m.Step, m.Output)
	}
	if string(m.Versions["1.1.0"]) != `{"description":"more trees"}` || m.Stages["production"] != "1.0.0" || len(m.Gates["production"].Terms) != 2 {
		t.Errorf("model = %+v", m)
	}
	_, err = Load(write(t, map[string]string{"zen.cue": strings.Replace(good, `model: "fraud-detector"`, `model: "nope"`, 1), "data/features.csv": "a\n"}))
	if err == nil || !strings.Contains(err.Error(), `pipelines.training.steps.train.outputs.model.model: no model "nope" in models`) {
		t.Errorf("binding to an undeclared model: %v", err)
	}
	for _, tt := range []struct{ models, want string }{
		{`models: "fraud-detector": {versions: "1.0.0": {}, stages: production: "2.0.0"}`, "models.fraud-detector.stages.production: version 2.0.0 is not declared in models.fraud-detector.versions"},
		{`models: "fraud-detector": {versions: "1.0.0": {}, gates: canary: "a > 1"}`, `models.fraud-detector.gates.canary: no stage "canary" in models.fraud-detector.stages`},
		{`models: "fraud-detector": {versions: "1.0.0": {}, stages: p: "1.0.0", gates: p: "auc >> 1"}`, `models.fraud-detector.gates.p: gate "auc >> 1"`},
		{`models: "fraud-detector": {versions: "1.0/0": {description: "x", card: "y"}}`, `zen.cue:35:38: model fraud-detector version "1.0/0": ` + VersionRule + `; write a version such as "1.0.0"`},
	} {
		_, err := Load(write(t, map[string]string{"zen.cue": good + tt.models + "\n", "data/features.csv": "a\n"}))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s:\n got %v\nwant %s", tt.models, err, tt.want)
		}
	}
}

// TestLoadModelInfo checks a model's metadata, a version's overriding it
// field by field, and that a version may still declare fields of its own.
func TestLoadModelInfo(t *testing.T) {
	src := good + `
models: "fraud-detector": {
	description: "finds fraud"
	licenses: ["Apache-2.0"]
	authors: ["Ada"]
	card: "# Fraud\n"
	versions: {
		"1.0.0": {}
		"1.1.0": {description: "more trees", authors: ["Ada", "Grace"], card: "# Fraud 1.1\n", notes: "free"}
	}
}
`
	cfg, err := Load(write(t, map[string]string{"zen.cue": src, "data/features.csv": "a\n"}))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Models["fraud-detector"]
	for _, tt := range []struct {
		version string
		want    ModelInfo
	}{
		{"1.0.0", ModelInfo{Description: "finds fraud", Licenses: []string{"Apache-2.0"}, Authors: []string{"Ada"}, Card: "# Fraud\n"}},
		{"1.1.0", ModelInfo{Description: "more trees", Licenses: []string{"Apache-2.0"}, Authors: []string{"Ada", "Grace"}, Card: "# Fraud 1.1\n"}},
	} {
		if got := m.VersionInfo(tt.version); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.version, got, tt.want)
		}
	}
	_, err = Load(write(t, map[string]string{"zen.cue": good + `models: "fraud-detector": {licenses: "MIT", versions: "1": {}}` + "\n", "data/features.csv": "a\n"}))
	if err == nil || !strings.Contains(err.Error(), `models."fraud-detector".licenses`) {
		t.Errorf("licenses as a string: %v", err)
	}
}

// TestLoadInputLinks refuses file and dir inputs whose path stays in the
// repository as text but leads out of it through a symlink, and takes
// links that stay in.
func TestLoadInputLinks(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644)
	dir := write(t, map[string]string{"data/v2/x.csv": "x", "zen.cue": ""})
	for name, target := range map[string]string{"data/secret": filepath.Join(outside, "secret"), "data/up": "../..", "data/current": "v2", "data/x": "v2/x.csv", "data/out": outside} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for src, want := range map[string]string{
		`file: "data/secret"`:                     `zen.cue:3:49: pipelines.p.steps.s.inputs.d.file: data/secret links outside the repository (to ` + filepath.Join(outside, "secret") + `)`,
		`dir: "data/up"`:                          `zen.cue:3:49: pipelines.p.steps.s.inputs.d.dir: data/up links outside the repository (to `,
		`dir: "data/current"`:                     ``,
		`file: "data/x"`:                          ``,
		`file: "data/x", code: ["data/out/*.py"]`: `zen.cue:3:72: pipelines.p.steps.s.code[0]: data/out/*.py: data/out links outside the repository (to ` + outside + `)`,
	} {
		os.WriteFile(filepath.Join(dir, "zen.cue"), []byte("package zen\n\npipelines: p: steps: s: {run: [\"x\"], inputs: d: "+src+"}\n"), 0o644)
		_, err := Load(dir)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", src, err)
		case want != "" && (err == nil || !strings.HasPrefix(err.Error(), want)):
			t.Errorf("%s: %v, want %s", src, err, want)
		}
	}
}
