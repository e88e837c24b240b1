package plan

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/zen-dev/zen/state"
)

// TestDiffNestedParameters checks that a struct parameter's change is
// told field by field, by its path, and that keys are shown so that they
// cannot pass for something else.
func TestDiffNestedParameters(t *testing.T) {
	fp := func(params map[string]string) *state.Fingerprint {
		f := &state.Fingerprint{Parameters: map[string]json.RawMessage{}}
		for k, v := range params {
			f.Parameters[k] = json.RawMessage(v)
		}
		return f
	}
	for _, tt := range []struct {
		name     string
		old, new map[string]string
		want     string
	}{
		{"one field", map[string]string{"train": `{"n_est":100,"max_depth":5}`}, map[string]string{"train": `{"max_depth":5,"n_est":50}`},
			"parameter changed: train.n_est 100 → 50"},
		{"deep fields, added and removed", map[string]string{"train": `{"opts":{"deep":true,"a":1},"seed":1}`}, map[string]string{"train": `{"opts":{"deep":false,"b":2},"seed":1}`},
			"parameter changed: train.opts.a 1 → (unset); parameter changed: train.opts.b (unset) → 2; parameter changed: train.opts.deep true → false"},
		{"kebab-case", map[string]string{"get-data": `{"n-est":1}`}, map[string]string{"get-data": `{"n-est":2}`},
			"parameter changed: get-data.n-est 1 → 2"},
		{"a struct for a number", map[string]string{"train": `5`}, map[string]string{"train": `{"n":1}`},
			`parameter changed: train 5 → {"n":1}`},
		{"a list", map[string]string{"train": `{"tags":["a"]}`}, map[string]string{"train": `{"tags":["a","b"]}`},
			`parameter changed: train.tags ["a"] → ["a","b"]`},
		{"indented, as a record has it", map[string]string{"train": "{\n  \"opts\": {\n    \"x\": [\n      1\n    ]\n  },\n  \"n\": 1\n}", "tags": "[\n  1\n]"}, map[string]string{"train": `{"n":2,"opts":{"x":[1]}}`, "tags": `[2]`},
			`parameter changed: tags [1] → [2]; parameter changed: train.n 1 → 2`},
		{"keys that are not plain", map[string]string{"a b": `{"x.y":1,"l\n+ step":1}`}, map[string]string{"a b": `{"x.y":2,"l\n+ step":2}`},
			`parameter changed: "a b"."l\n+ step" 1 → 2; parameter changed: "a b"."x.y" 1 → 2`},
		{"no change but spacing", map[string]string{"train": `{"n": 1}`}, map[string]string{"train": `{"n":1}`}, ""},
	} {
		var got []string
		for _, r := range Diff(fp(tt.old), fp(tt.new), false) {
			got = append(got, r.String())
		}
		if g := strings.Join(got, "; "); g != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, g, tt.want)
		}
	}
}
