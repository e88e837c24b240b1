package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// fuzzPlanName is the name ReadSaved is given for the fuzzed file.
const fuzzPlanName = "fuzz.zenplan"

// fuzzSavedSeeds are saved plans as zen plan -o writes them, and files
// ReadSaved must refuse: cut short, edited, of another format version.
func fuzzSavedSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	model := state.Artifact{Digest: digestOf([]byte("model")), Size: 4096, Type: "model", MediaType: "application/vnd.zen.dir.v1.tar"}
	p := &Plan{
		Version: Version, Stack: "local", Store: "oci-layout:.zen/store",
		StateCommit: "0d1f6c3d3b5b1c1f43e3e8c0a0a1b8f1b6d4e2c9",
		Source:      Source{Commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", Dirty: true, DirtyDigest: digestOf([]byte("work tree")), Changed: []string{"steps/train.py"}},
		Overrides:   []Override{{Path: "pipelines.quickstart.parameters.epochs", Value: json.Number("10")}},
		Pipelines: []*Pipeline{{Name: "quickstart", Steps: []*Step{
			{Name: "load", Action: Cached, Key: "ab12", CachedFrom: "20261122-090000.000-aaaaaa", Outputs: map[string]state.Artifact{"train": {Digest: digestOf([]byte("train.csv")), Size: 120, Type: "table"}}, Fingerprint: &state.Fingerprint{Command: []string{"python3", "steps/load.py"}}},
			{Name: "train", Action: Run, Key: "cd34", Reasons: []Reason{{Kind: ReasonCode, Subject: "steps/train.py", Old: digestOf([]byte("train.py")), New: digestOf([]byte("train.py, edited"))}}, Fingerprint: &state.Fingerprint{
				Command:    []string{"python3", "steps/train.py"},
				Parameters: map[string]json.RawMessage{"epochs": json.RawMessage(`10`)},
				Inputs:     map[string]string{"train": digestOf([]byte("train.csv"))},
			}, Resources: &schema.Resources{CPUs: 4, Memory: "16G", GPUs: 1, Time: "2h", Partition: "gpu", Sbatch: []string{"--exclusive"}}},
			{Name: "evaluate", Action: Create, Fingerprint: &state.Fingerprint{Command: []string{"python3", "steps/evaluate.py"}}, Outputs: map[string]state.Artifact{"model": model}, Metrics: map[string]float64{"accuracy": 0.953}},
		}}},
		Models: []*ModelChange{
			{Model: "iris-classifier", Version: "1.1.0", Action: Create, From: "quickstart.train.model"},
			{Model: "iris-classifier", Version: "1.0.0", Stage: "production", Action: Run, Gate: "accuracy >= 0.9", GateResults: []string{"accuracy >= 0.9: 0.953 ✓"}},
		},
		Warnings: []string{"registry.example.com is not reachable"},
	}
	req := Request{Stack: "local", Pipelines: []string{"quickstart"}, NoCache: true, Sets: []string{"pipelines.quickstart.parameters.epochs=10"}}
	var full, empty bytes.Buffer
	if err := WriteSaved(&full, "v0.9.0", req, p); err != nil {
		tb.Fatal(err)
	}
	if err := WriteSaved(&empty, "(devel)", Request{Stack: "local"}, &Plan{Version: Version, Stack: "local"}); err != nil {
		tb.Fatal(err)
	}
	b := full.Bytes()
	return [][]byte{
		b,
		empty.Bytes(),
		b[:len(b)/2],
		bytes.Replace(b, []byte(`"action":"cached"`), []byte(`"action":"run"`), 1),
		bytes.Replace(b, []byte(`"format_version":1,"zen_version"`), []byte(`"format_version":2,"zen_version"`), 1),
		[]byte(`{"format":"terraform-plan"}`),
	}
}

// withDigest returns the JSON object data with its digest made to match
// its body, or data when it is no JSON object.
func withDigest(data []byte) []byte {
	var doc map[string]json.RawMessage
	if json.Unmarshal(data, &doc) != nil || doc == nil {
		return data
	}
	var body bytes.Buffer
	if json.Compact(&body, doc["body"]) != nil {
		return data
	}
	doc["body"] = body.Bytes()
	doc["digest"], _ = json.Marshal(digestOf(body.Bytes()))
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false) // the body must stay as its digest was made
	if enc.Encode(doc) != nil {
		return data
	}
	return out.Bytes()
}

// FuzzReadSaved reads arbitrary bytes as a saved plan; with fixDigest, the
// digest is made to match the body first, so that the fuzzer reaches the
// plan behind it. A file refused must be refused with an error that names
// it; a plan read must not be stale against itself, and must survive being
// saved again: WriteSaved of it reads back to the same request and plan.
func FuzzReadSaved(f *testing.F) {
	for i, b := range fuzzSavedSeeds(f) {
		f.Add(b, false)
		if i < 2 { // the plans zen wrote, their digests made again
			f.Add(b, true)
		}
	}
	f.Add([]byte(`{"format":"zen-plan","format_version":1,"zen_version":"v0.9.0","body":{"request":{"stack":"local"},"plan":{"format_version":1,"stack":"local"}}}`), true)
	f.Fuzz(func(t *testing.T, data []byte, fixDigest bool) {
		if fixDigest {
			data = withDigest(data)
		}
		s, err := ReadSaved(bytes.NewReader(data), fuzzPlanName)
		if err != nil {
			if !strings.HasPrefix(err.Error(), fuzzPlanName+": ") || !errors.Is(err, ErrNotSaved) {
				t.Fatalf("refused with %q: want an ErrNotSaved naming %s", err, fuzzPlanName)
			}
			return
		}
		if s.Format != SavedFormat || s.Version != SavedVersion || s.Plan == nil {
			t.Fatalf("read format %q version %d, plan %v", s.Format, s.Version, s.Plan)
		}
		if why := s.Stale(s.Plan); why != "" {
			t.Fatalf("the plan is stale against itself: %s", why)
		}
		var again bytes.Buffer
		if err := WriteSaved(&again, s.Zen, s.Request, s.Plan); err != nil {
			t.Fatalf("a plan read does not save: %v", err)
		}
		s2, err := ReadSaved(bytes.NewReader(again.Bytes()), fuzzPlanName)
		if err != nil {
			t.Fatalf("a plan saved again does not read: %v\n%s", err, again.Bytes())
		}
		if s2.Zen != s.Zen {
			t.Fatalf("zen version %q saved again reads as %q", s.Zen, s2.Zen)
		}
		first, err := savedBody(s.Request, s.Plan)
		if err != nil {
			t.Fatal(err)
		}
		second, err := savedBody(s2.Request, s2.Plan)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("saved again, the plan changed:\n%s\nthen\n%s", first, second)
		}
	})
}
