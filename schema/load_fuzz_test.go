package schema

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// fuzzModels declares the model of good with versions, stages and gates.
const fuzzModels = `
models: "fraud-detector": {
	versions: {"1.0.0": {}, "1.1.0": {description: "more trees"}}
	stages: {production: "1.0.0", staging: "1.1.0"}
	gates: {
		production: "roc_auc >= 0.85 && evaluate.loss < 1 && roc_auc >= staging.roc_auc"
		staging:    "train.loss < 0.5"
	}
}
`

// fuzzLoaderSeeds evaluates CUE packages in root, a repository holding
// the files they read, and returns the JSON each evaluated to: what
// (*loader).decode is given, by load or from the cache.
func fuzzLoaderSeeds(tb testing.TB, root string) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, src := range []string{good, good + fuzzModels} {
		if err := os.WriteFile(filepath.Join(root, "zen.cue"), []byte(src), 0o644); err != nil {
			tb.Fatal(err)
		}
		if _, err := Load(root); err != nil {
			tb.Fatal(err)
		}
		b, err := os.ReadFile((&loader{root: root}).cachePath())
		if err != nil {
			tb.Fatal(err)
		}
		var e cacheEntry
		if err := json.Unmarshal(b, &e); err != nil {
			tb.Fatal(err)
		}
		out = append(out, e.Data)
	}
	return out
}

// fuzzFields are the top-level fields the loader's errors can be about.
var fuzzFields = []string{"default_stack", "pipelines", "stacks", "models"}

// FuzzLoaderDecode decodes arbitrary JSON as an evaluated configuration,
// as (*loader).decode does after CUE or from the cache. It must fail with
// an error naming the repository or with Errors that each name a field,
// and decode the same input the same way every time. A Config it returns
// must keep the promises decode checks: a known default stack, steps in
// an order that has every step after those it reads from, gates of
// declared stages, stages of declared versions, outputs bound to declared
// models, input paths inside the repository, positive timeouts.
func FuzzLoaderDecode(f *testing.F) {
	root := f.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "data"), 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "data", "features.csv"), []byte("a\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	for _, b := range fuzzLoaderSeeds(f, root) {
		f.Add(b)
	}
	for _, s := range []string{
		`{}`,
		`{"default_stack":"local"}`,
		`{"default_stack":"local","pipelines":{"p":{"steps":{"a":{"run":["a"],"inputs":{"x":{"ref":"p.b.out"}},"outputs":{"out":{"type":"file"}}},"b":{"run":["b"],"inputs":{"y":{"ref":"p.a.out"}},"outputs":{"out":{"type":"file"}}}}}}}`,
		`{"default_stack":"local","pipelines":{"p":{"steps":{"a":{"run":["a"],"inputs":{"x":{"dir":"../data"},"m":{"model":"m","stage":"prod"}},"retries":3,"timeout":"-1s","resources":{"cpus":2,"time":"2h"},"code":["/etc","*.py","src/**"]}}}}}`,
		`{"default_stack":"hpc","stacks":{"hpc":{"orchestrator":{"flavor":"slurm","partition":"gpu"},"artifact_store":{"flavor":"oci"}}}}`,
		`{"default_stack":"local","models":{"m":{"versions":{"1":{}},"stages":{"prod":"2"},"gates":{"prod":"auc >> 1","canary":"auc > 1"}}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := (&loader{root: root}).decode(data)
		again, errAgain := (&loader{root: root}).decode(data)
		if err != nil {
			if errAgain == nil || !slices.Equal(errorLines(err), errorLines(errAgain)) {
				t.Fatalf("decoded twice, the same input fails with\n%v\nthen\n%v", err, errAgain)
			}
			checkDecodeError(t, root, err)
			return
		}
		if errAgain != nil || !reflect.DeepEqual(cfg, again) {
			t.Fatalf("decoded twice, the same input gives\n%+v\nthen\n%+v, %v", cfg, again, errAgain)
		}
		checkConfig(t, root, cfg)
	})
}

// errorLines returns the lines of err's message, sorted: Errors reported
// at the same position may come in any order.
func errorLines(err error) []string {
	lines := strings.Split(err.Error(), "\n")
	sort.Strings(lines)
	return lines
}

// checkDecodeError fails unless err names the repository, for JSON that
// does not decode, or is Errors that each name a field.
func checkDecodeError(t *testing.T, root string, err error) {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) {
		if !strings.HasPrefix(err.Error(), "decode "+root+": ") {
			t.Fatalf("the error does not name %s: %v", root, err)
		}
		return
	}
	if len(es) == 0 {
		t.Fatal("failed with no errors")
	}
	for _, e := range es {
		field, _, _ := strings.Cut(e.Path, ".")
		if e.Msg == "" || !slices.Contains(fuzzFields, field) {
			t.Fatalf("an error names no field of the configuration: %q", e)
		}
	}
}

// checkConfig fails unless cfg keeps the promises decode checks.
func checkConfig(t *testing.T, root string, cfg *Config) {
	t.Helper()
	if cfg.Root != root {
		t.Fatalf("Root is %s, loaded from %s", cfg.Root, root)
	}
	if _, ok := cfg.Stacks[cfg.DefaultStack]; !ok && (len(cfg.Stacks) > 0 || cfg.DefaultStack != "local") {
		t.Fatalf("default stack %q, stacks %v", cfg.DefaultStack, cfg.StackNames())
	}
	for _, pn := range cfg.PipelineNames() {
		p := cfg.Pipelines[pn]
		done := map[string]bool{}
		for _, sn := range p.Order {
			s := p.Steps[sn]
			if s == nil || done[sn] {
				t.Fatalf("pipeline %s: order %v, steps %v", pn, p.Order, slices.Sorted(maps.Keys(p.Steps)))
			}
			for _, up := range s.Upstream() {
				if _, ok := p.Steps[up]; ok && !done[up] {
					t.Fatalf("pipeline %s: order %v has %s before %s, which it reads from", pn, p.Order, sn, up)
				}
			}
			done[sn] = true
		}
		if len(done) != len(p.Steps) {
			t.Fatalf("pipeline %s: order %v, steps %v", pn, p.Order, slices.Sorted(maps.Keys(p.Steps)))
		}
		for sn, s := range p.Steps {
			if s.Timeout < 0 || s.Retries.Backoff < 0 {
				t.Fatalf("step %s.%s: timeout %v, backoff %v", pn, sn, s.Timeout, s.Retries.Backoff)
			}
			for in, input := range s.Inputs {
				if (input.Kind == InputFile || input.Kind == InputDir) && (path.IsAbs(input.Path) || slices.Contains(strings.Split(input.Path, "/"), "..")) {
					t.Fatalf("step %s.%s: input %s reads %s", pn, sn, in, input.Path)
				}
			}
			for on, o := range s.Outputs {
				if o.Model != "" && (cfg.Models[o.Model] == nil || o.Type != "model") {
					t.Fatalf("step %s.%s: output %s of type %s is bound to model %q", pn, sn, on, o.Type, o.Model)
				}
			}
		}
	}
	for name, m := range cfg.Models {
		for stage, v := range m.Stages {
			if _, ok := m.Versions[v]; !ok {
				t.Fatalf("model %s: stage %s holds %s, which is not declared", name, stage, v)
			}
		}
		for stage := range m.Gates {
			if _, ok := m.Stages[stage]; !ok {
				t.Fatalf("model %s: a gate for %s, which is no stage", name, stage)
			}
		}
	}
}
