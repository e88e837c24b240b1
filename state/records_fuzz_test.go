package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Where the fuzzed records are read from.
const (
	fuzzRunID    = "20261123-101500.123-3fa2c1"
	fuzzCacheKey = "cd34ef"
	fuzzPipeline = "quickstart"
	fuzzModel    = "iris-classifier"
	fuzzVersion  = "1.0.0"
)

// fuzzKind is one kind of record: where it is kept, and how Records reads
// it.
type fuzzKind struct {
	name string
	path string
	new  func() any
	read func(Records) (any, bool, error)
}

// fuzzKinds are the records the typed readers of Records read.
var fuzzKinds = []fuzzKind{
	{"run", RunPath(fuzzRunID), func() any { return new(Run) }, func(r Records) (any, bool, error) { return r.Run(fuzzRunID) }},
	{"cache", CachePath(fuzzCacheKey), func() any { return new(Cache) }, func(r Records) (any, bool, error) { return r.Cache(fuzzCacheKey) }},
	{"pipeline", PipelinePath(fuzzPipeline), func() any { return new(Pipeline) }, func(r Records) (any, bool, error) { return r.Pipeline(fuzzPipeline) }},
	{"submission", SubmissionPath(fuzzRunID), func() any { return new(Submission) }, func(r Records) (any, bool, error) {
		subs, err := r.Submissions()
		if err != nil || len(subs) != 1 {
			return nil, false, err
		}
		return subs[0], true, nil
	}},
	{"model version", ModelVersionPath(fuzzModel, fuzzVersion), func() any { return new(ModelVersion) }, func(r Records) (any, bool, error) { return r.ModelVersion(fuzzModel, fuzzVersion) }},
	{"stages", StagesPath(fuzzModel), func() any { return new(Stages) }, func(r Records) (any, bool, error) { return r.Stages(fuzzModel) }},
}

// fuzzSnapshot commits data at the path of every kind of record to a
// state held in memory, and returns the snapshot of that commit.
func fuzzSnapshot(t *testing.T, data []byte) *Snapshot {
	t.Helper()
	s := &Store{ref: DefaultRef, st: filesystem.NewStorage(memfs.New(), cache.NewObjectLRUDefault())}
	change := map[string][]byte{}
	for _, k := range fuzzKinds {
		change[k.path] = data
	}
	files, err := gitSortFiles(change)
	if err != nil {
		t.Fatal(err)
	}
	author := object.Signature{Name: "zen", Email: "zen@localhost", When: time.Unix(1795435200, 0).UTC()}
	w := &gitWriter{s: s, blobs: map[string]plumbing.Hash{}, msg: "zen: record state\n", author: author}
	commit, err := w.build(plumbing.ZeroHash, plumbing.ZeroHash, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := s.snapshot(commit)
	if err != nil {
		t.Fatal(err)
	}
	return sn
}

// fuzzDigest is the sha256 digest of s, as records name artifacts.
func fuzzDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// fuzzRecordSeeds are records as zen writes them, one of each kind.
func fuzzRecordSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	started := time.Date(2026, 11, 23, 10, 15, 0, 123000000, time.UTC)
	finished := started.Add(95 * time.Second)
	code := 0
	fp := &Fingerprint{
		Command:    []string{"python3", "steps/train.py"},
		Image:      "python:3.12",
		Env:        map[string]string{"MODE": "fast", "TOKEN": "secret:api_token"},
		Parameters: map[string]json.RawMessage{"epochs": json.RawMessage(`300`), "lr": json.RawMessage(`{"start":0.5,"decay":[0.9,0.99]}`)},
		Code:       map[string]string{"steps/train.py": fuzzDigest("train.py")},
		Inputs:     map[string]string{"train": fuzzDigest("train.csv")},
		Outputs:    map[string]string{"model": "model"},
	}
	model := Artifact{Digest: fuzzDigest("model"), Size: 4096, Type: "model", MediaType: "application/vnd.zen.dir.v1.tar"}
	log := &Artifact{Digest: fuzzDigest("log"), Size: 312, Type: "log"}
	metrics := map[string]float64{"accuracy": 0.953, "loss": 1.5e-3}
	records := []any{
		&Run{
			Version: RecordVersion, ID: fuzzRunID, Pipeline: "quickstart", Status: StatusSucceeded,
			SourceCommit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", Overrides: map[string]any{"epochs": 10.0},
			Stack: "local", Orchestrator: "local", Store: "oci-layout:.zen/store",
			Parameters: map[string]any{"seed": 42.0, "name": "iris", "tags": []any{"a", true, nil}},
			Started:    started, Finished: finished, Order: []string{"load", "train"},
			Steps: map[string]*StepResult{
				"load":  {Status: StatusCached, CacheKey: "ab12", CachedFrom: "20261122-090000.000-aaaaaa"},
				"train": {Status: StatusSucceeded, CacheKey: "cd34", Attempts: 2, ExitCode: &code, Started: &started, Finished: &finished, Outputs: map[string]Artifact{"model": model}, Metrics: metrics, Log: log, Fingerprint: fp, Sources: map[string]string{"train": "load.train"}, Job: "4711", Node: "gpu01"},
			},
		},
		&Cache{Version: RecordVersion, Key: fuzzCacheKey, Pipeline: "quickstart", Step: "train", RunID: fuzzRunID, Created: finished, Outputs: map[string]Artifact{"model": model}, Metrics: metrics, Log: log},
		&Pipeline{Version: RecordVersion, Pipeline: "quickstart", RunID: fuzzRunID, Dirty: true, Updated: finished, Steps: map[string]*StepState{
			"train": {Fingerprint: fp, Key: "cd34", Status: StatusSucceeded, RunID: fuzzRunID, Outputs: map[string]Artifact{"model": model}, Metrics: metrics, Log: log},
			"load":  {Fingerprint: &Fingerprint{Command: []string{"true"}}, Status: StatusFailed, Reason: "exit status 1", RunID: fuzzRunID},
		}},
		&Submission{Version: RecordVersion, ID: fuzzRunID, Runs: []string{fuzzRunID}, Stack: "cluster", Source: fuzzDigest("source"), Store: "oci:registry.example.com/ml", Plan: json.RawMessage(`{"format_version":1,"stack":"cluster"}`), Submitted: started, Jobs: 3},
		&ModelVersion{Version: RecordVersion, Model: "iris-classifier", ModelVersion: "1.0.0", Digest: fuzzDigest("manifest"), Repository: "registry.example.com/ml/iris", Pipeline: "quickstart", Step: "train", Output: "model", OutputDigest: fuzzDigest("model"), RunID: fuzzRunID, SourceCommit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", Metrics: map[string]float64{"evaluate.accuracy": 0.953}, Declared: json.RawMessage(`{"description":"first"}`), SignedBy: fuzzDigest("key"), Created: finished},
		&Stages{Version: RecordVersion, Model: "iris-classifier", Stages: map[string]*Stage{"production": {ModelVersion: "1.0.0", Digest: fuzzDigest("manifest"), SourceCommit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", Updated: finished}}},
		&Stages{Version: RecordVersion, Model: "iris-classifier",
			Stages: map[string]*Stage{"production": {ModelVersion: "1.0.0", Digest: fuzzDigest("manifest"), SourceCommit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", Updated: finished,
				Gate:     &GateResult{Expression: "accuracy >= 0.9", Results: []string{"accuracy >= 0.9: 0.953 ✓"}, Passed: true},
				Rollback: &Tenure{ModelVersion: "1.0.0", Digest: fuzzDigest("manifest"), From: started, To: started}}},
			History: map[string][]*Tenure{"production": {
				{ModelVersion: "1.0.0", Digest: fuzzDigest("manifest"), SourceCommit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", From: started, To: started, Gate: &GateResult{Expression: "accuracy >= 0.9", Results: []string{"accuracy >= 0.9: 0.953 ✓"}, Passed: true}},
				{ModelVersion: "1.1.0", Digest: fuzzDigest("manifest 2"), From: started, To: finished, Rollback: true},
			}}},
	}
	var out [][]byte
	for _, rec := range records {
		out = append(out, mustEncode(tb, rec))
	}
	return out
}

// FuzzDecodeRecord decodes arbitrary bytes as every kind of record the
// typed readers of Records return. A record that decodes must be of
// RecordVersion, have no null step, and survive being written again:
// Encode of it decodes, to a record that encodes to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	for _, b := range fuzzRecordSeeds(f) {
		f.Add(b)
	}
	for _, s := range fuzzCorruptSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, k := range fuzzKinds {
			rec := k.new()
			if err := decode(data, rec); err != nil {
				continue
			}
			checkRecord(t, k, rec)
		}
	})
}

// fuzzCorruptSeeds are records zen must refuse, or read with care.
var fuzzCorruptSeeds = []string{
	`{"version":2,"id":"x"}`,
	`{"id":"x"}`,
	`{"version":1,"steps":{"a":null},"started":"2026-11-23T10:15:00+01:00"}`,
	`{"version":1,"Version":2}`,
	`{"version":1,"stages":{"production":{"updated":"2026-11-23T10:15:00.5-08:00"}}}`,
	`[1]`,
}

// checkRecord fails unless rec, a record of kind k that decoded, is of
// RecordVersion, has no null step (what reads a run's or a pipeline's
// steps expects none), and encodes to bytes that decode to a record
// encoding to the same bytes.
func checkRecord(t *testing.T, k fuzzKind, rec any) {
	t.Helper()
	if v := reflect.ValueOf(rec).Elem().FieldByName("Version").Int(); v != RecordVersion {
		t.Fatalf("%s: decoded a record of version %d", k.name, v)
	}
	if steps := reflect.ValueOf(rec).Elem().FieldByName("Steps"); steps.IsValid() {
		for it := steps.MapRange(); it.Next(); {
			if it.Value().IsNil() {
				t.Fatalf("%s: decoded a record with the null step %v", k.name, it.Key())
			}
		}
	}
	first, err := Encode(rec)
	if err != nil {
		t.Fatalf("%s: a decoded record does not encode: %v", k.name, err)
	}
	again := k.new()
	if err := decode(first, again); err != nil {
		t.Fatalf("%s: a re-encoded record does not decode: %v\n%s", k.name, err, first)
	}
	second, err := Encode(again)
	if err != nil {
		t.Fatalf("%s: a record decoded from Encode does not encode: %v", k.name, err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("%s: encoding is not stable:\n%s\nthen\n%s", k.name, first, second)
	}
}

// TestRecordReadersMatchDecode has the typed readers of Records read each
// seed of FuzzDecodeRecord from a commit: they read what decode reads,
// and report a record that does not decode as a CorruptError naming its
// path. (Writing a commit costs too much to do for every fuzzed input.)
func TestRecordReadersMatchDecode(t *testing.T) {
	seeds := fuzzRecordSeeds(t)
	for _, s := range fuzzCorruptSeeds {
		seeds = append(seeds, []byte(s))
	}
	for _, data := range seeds {
		sn := fuzzSnapshot(t, data)
		r := Records{Snapshot: sn, Ref: DefaultRef}
		for _, k := range fuzzKinds {
			want := k.new()
			decodeErr := decode(data, want)
			got, ok, err := k.read(r)
			if decodeErr != nil {
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Ref != DefaultRef || ce.Commit != sn.Commit() || ce.Path != k.path || ce.Err.Error() != decodeErr.Error() {
					t.Errorf("%s: decode fails with %q, the reader with %#v", k.name, decodeErr, err)
				} else if !strings.Contains(err.Error(), k.path) {
					t.Errorf("%s: the error does not name %s: %v", k.name, k.path, err)
				}
				continue
			}
			if err != nil || !ok {
				t.Errorf("%s: %s decodes, but the reader returns ok %v, %v", k.name, data, ok, err)
				continue
			}
			checkRecord(t, k, got)
			if a, b := mustEncode(t, got), mustEncode(t, want); !bytes.Equal(a, b) {
				t.Errorf("%s: the reader read\n%s\ndecode\n%s", k.name, a, b)
			}
		}
	}
}

// mustEncode encodes rec, failing the test if it does not encode.
func mustEncode(tb testing.TB, rec any) []byte {
	tb.Helper()
	b, err := Encode(rec)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
