package apply

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/provenance"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/schema/gate"
	"github.com/zen-dev/zen/state"
)

// modelRecords is the record of the model versions a test pushed.
type modelRecords map[string]*state.ModelVersion

func (r modelRecords) Cache(string) (*state.Cache, bool, error)       { return nil, false, nil }
func (r modelRecords) Pipeline(string) (*state.Pipeline, bool, error) { return nil, false, nil }
func (r modelRecords) Stages(string) (*state.Stages, bool, error)     { return nil, false, nil }
func (r modelRecords) ModelVersion(model, version string) (*state.ModelVersion, bool, error) {
	mv, ok := r[model+"/"+version]
	return mv, ok, nil
}

func testSigner(t *testing.T) *signature.Signer {
	t.Helper()
	priv, _, err := signature.GeneratePlainKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadSigner(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// attestBuild attests, by s, that digest was made as b says.
func attestBuild(t *testing.T, repo signature.Repository, digest string, b *provenance.Build, s *signature.Signer) {
	t.Helper()
	pred, err := b.Predicate()
	if err != nil {
		t.Fatal(err)
	}
	if err := signature.Attest(context.Background(), repo, digest, provenance.Type, pred, s); err != nil {
		t.Fatal(err)
	}
}

// pushVersion packages version v of the model scorer from a file of its
// own under dir, tags, signs and attests it by key as apply does, and
// returns its record.
func pushVersion(t *testing.T, ms registry.ModelStore, key *signature.Signer, dir, v string) *state.ModelVersion {
	t.Helper()
	ctx := context.Background()
	src := filepath.Join(dir, v)
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "weights.bin"), []byte("weights "+v), 0o644); err != nil {
		t.Fatal(err)
	}
	desc, err := ms.PushModel(ctx, src, registry.ModelMeta{Name: "scorer", Version: v})
	if err != nil {
		t.Fatal(err)
	}
	if err := ms.Tag(ctx, "scorer", v, desc.Digest); err != nil {
		t.Fatal(err)
	}
	repo := ms.ModelRepository("scorer")
	if err := signature.Sign(ctx, repo, desc.Digest, key); err != nil {
		t.Fatal(err)
	}
	mv := &state.ModelVersion{Model: "scorer", ModelVersion: v, Digest: desc.Digest, Pipeline: "p", Step: "train", Output: "model", RunID: "run-" + v, SourceCommit: "c0ffee"}
	attestBuild(t, repo, desc.Digest, &provenance.Build{Entry: "p.train.model", Run: mv.RunID, Commit: mv.SourceCommit}, key)
	return mv
}

// TestPromoteRefusesForgeries forges a recorded version in a layout store
// in each way zen verify tells apart, and moves a stage to it: every move
// is refused with the reason, and neither the stage's tag nor its record
// moves. Restored, the move is made.
func TestPromoteRefusesForgeries(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := registry.OpenLayout(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ms := store.(registry.ModelStore)
	key, other := testSigner(t), testSigner(t)
	repo := ms.ModelRepository("scorer")

	attest := func(digest string, b *provenance.Build, s *signature.Signer) { attestBuild(t, repo, digest, b, s) }

	// Versions 1.0.0 (A) and 1.1.0 (B), signed and attested as apply does.
	recs := modelRecords{}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		recs["scorer/"+v] = pushVersion(t, ms, key, dir, v)
	}
	a, b := recs["scorer/1.0.0"].Digest, recs["scorer/1.1.0"].Digest
	b2 := b
	tagOf := func(digest, suffix string) string {
		return "sha256-" + strings.TrimPrefix(digest, "sha256:") + "." + suffix
	}
	manifest := func(tag string) []byte {
		t.Helper()
		raw, err := repo.Manifest(ctx, tag)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	put := func(tag string, raw []byte) {
		t.Helper()
		if err := repo.PutManifest(ctx, tag, raw); err != nil {
			t.Fatal(err)
		}
	}
	// An image manifest with no layers: no signature, no attestation.
	empty := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	if err := repo.PutBlob(ctx, "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	if err := json.Unmarshal(manifest(b), &m); err != nil {
		t.Fatal(err)
	}
	layer := filepath.Join(dir, "store", "blobs", "sha256", strings.TrimPrefix(m.Layers[0].Digest, "sha256:"))
	layerBytes, err := os.ReadFile(layer)
	if err != nil {
		t.Fatal(err)
	}
	sig, att := manifest(tagOf(b, "sig")), manifest(tagOf(b, "att"))
	restore := func() {
		t.Helper()
		put(tagOf(b, "sig"), sig)
		put(tagOf(b, "att"), att)
		if err := ms.Tag(ctx, "scorer", "1.1.0", b); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(layer, layerBytes, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	otherKey := func(suffix string) {
		t.Helper()
		put(tagOf(b, suffix), empty)
		var err error
		if suffix == "sig" {
			err = signature.Sign(ctx, repo, b, other)
		} else {
			attest(b, &provenance.Build{Entry: "p.train.model", Run: "run-1.1.0", Commit: "c0ffee"}, other)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// A predicate by the right key that names another build than the
	// record: replayed from another run, or made up.
	forged := func(b *provenance.Build) func() {
		return func() {
			put(tagOf(b2, "att"), empty)
			attest(b2, b, key)
		}
	}

	ap := &applier{
		env: &Env{
			Config:   &schema.Config{Models: map[string]*schema.Model{"scorer": {Name: "scorer"}}},
			Store:    ms,
			Records:  recs,
			Verifier: key.Public(),
		},
		plan: &plan.Plan{},
	}
	promote := func() (*state.Stages, error) {
		st := &state.Stages{Model: "scorer", Stages: map[string]*state.Stage{}}
		c := &plan.ModelChange{Model: "scorer", Version: "1.1.0", Stage: "staging", Action: plan.Create}
		return st, ap.promote(ctx, ms, c, st, map[string]*state.ModelVersion{}, time.Now())
	}

	tests := []struct {
		name  string
		forge func()
		is    error // the error wraps it
		want  string
	}{
		{"version tag moved", func() { ms.Tag(ctx, "scorer", "1.1.0", a) }, nil, "tampered, or the tag moved outside zen"},
		{"signature stripped", func() { put(tagOf(b, "sig"), empty) }, signature.ErrUnsigned, "signature: "},
		{"signature by another key", func() { otherKey("sig") }, signature.ErrOtherKey, "signature: "},
		{"signature replayed", func() { put(tagOf(b, "sig"), manifest(tagOf(a, "sig"))) }, signature.ErrBadSignature, "signature: "},
		{"attestation stripped", func() { put(tagOf(b, "att"), empty) }, signature.ErrUnsigned, "provenance: "},
		{"attestation by another key", func() { otherKey("att") }, signature.ErrOtherKey, "provenance: "},
		{"attestation replayed", func() { put(tagOf(b, "att"), manifest(tagOf(a, "att"))) }, signature.ErrBadSignature, "provenance: "},
		{"attestation names another run", forged(&provenance.Build{Entry: "p.train.model", Run: "not-a-zen-run", Commit: "c0ffee"}), nil, "provenance: the attestation by the key names run not-a-zen-run, the record run-1.1.0"},
		{"attestation names another commit", forged(&provenance.Build{Entry: "p.train.model", Run: "run-1.1.0", Commit: "badc0de"}), nil, "names commit badc0de, the record c0ffee"},
		{"attestation names another entry point", forged(&provenance.Build{Entry: "p.train.other", Run: "run-1.1.0", Commit: "c0ffee"}), nil, "names entry point p.train.other, the record p.train.model"},
		{"layer altered", func() {
			altered := append([]byte(nil), layerBytes...)
			altered[len(altered)-1] ^= 1
			if err := os.WriteFile(layer, altered, 0o644); err != nil {
				t.Fatal(err)
			}
		}, registry.ErrDigestMismatch, "stored content was altered: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer restore()
			tt.forge()
			st, err := promote()
			if err == nil {
				t.Fatal("promoted a forged version")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want one wrapping %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q in it", err, tt.want)
			}
			if len(st.Stages) != 0 {
				t.Errorf("recorded %v", st.Stages)
			}
			if got, err := ms.Resolve(ctx, "scorer", "staging"); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("stage tag: %s, %v; want it absent", got, err)
			}
		})
	}

	st, err := promote()
	if err != nil {
		t.Fatalf("restored: %v", err)
	}
	if got := st.Stages["staging"]; got == nil || got.Digest != b {
		t.Errorf("recorded %+v, want %s", got, b)
	}
	if got, err := ms.Resolve(ctx, "scorer", "staging"); err != nil || got != b {
		t.Errorf("stage tag: %s, %v; want %s", got, err, b)
	}
}

// TestPromoteRollback moves a stage back to a version it held, under a
// champion gate the version no longer passes: the move is made without
// the gate, and recorded as a rollback with the gate result of the
// tenure it returns to. A version the stage never held meets its gate,
// and is refused by it.
func TestPromoteRollback(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := registry.OpenLayout(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ms := store.(registry.ModelStore)
	key := testSigner(t)
	recs := modelRecords{}
	for v, score := range map[string]float64{"1.0.0": 0.8, "1.1.0": 0.9} {
		mv := pushVersion(t, ms, key, dir, v)
		mv.Metrics = map[string]float64{"train.score": score}
		recs["scorer/"+v] = mv
	}
	a, b := recs["scorer/1.0.0"].Digest, recs["scorer/1.1.0"].Digest
	champion, err := gate.Parse("score > production.score", []string{"production", "staging"})
	if err != nil {
		t.Fatal(err)
	}
	strict, err := gate.Parse("score >= 0.85", []string{"production", "staging"})
	if err != nil {
		t.Fatal(err)
	}
	ap := &applier{
		env: &Env{
			Config: &schema.Config{Models: map[string]*schema.Model{"scorer": {Name: "scorer",
				Gates: map[string]*gate.Expr{"production": champion, "staging": strict}}}},
			Store: ms, Records: recs, Verifier: key.Public(),
		},
		plan: &plan.Plan{Source: plan.Source{Commit: "revert"}},
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	then := &state.GateResult{Expression: "score > production.score", Results: []string{"score > production.score (0.7): 0.8 ✓"}, Passed: true}
	// production held 1.0.0, then 1.1.0, which beat it; staging held 1.1.0.
	st := &state.Stages{Model: "scorer",
		Stages: map[string]*state.Stage{
			"production": {ModelVersion: "1.1.0", Digest: b, SourceCommit: "promote", Updated: t0.Add(time.Hour)},
			"staging":    {ModelVersion: "1.1.0", Digest: b, SourceCommit: "promote", Updated: t0},
		},
		History: map[string][]*state.Tenure{"production": {{ModelVersion: "1.0.0", Digest: a, SourceCommit: "first", From: t0, To: t0.Add(time.Hour), Gate: then}}},
	}
	now := t0.Add(2 * time.Hour)
	move := func(stage string) error {
		c := &plan.ModelChange{Model: "scorer", Version: "1.0.0", Stage: stage, Action: plan.Run, From: "1.1.0"}
		return ap.promote(ctx, ms, c, st, map[string]*state.ModelVersion{}, now)
	}

	if err := move("production"); err != nil {
		t.Fatalf("rollback refused: %v", err)
	}
	got := st.Stages["production"]
	if got.ModelVersion != "1.0.0" || got.Digest != a || got.SourceCommit != "revert" || !got.Updated.Equal(now) {
		t.Errorf("recorded %+v", got)
	}
	if got.Rollback == nil || !got.Rollback.From.Equal(t0) || got.Rollback.SourceCommit != "first" || got.Gate != then {
		t.Errorf("recorded rollback %+v, gate %+v; want the tenure from %s with its gate", got.Rollback, got.Gate, t0)
	}
	h := st.History["production"]
	if len(h) != 2 || h[1].ModelVersion != "1.1.0" || !h[1].From.Equal(t0.Add(time.Hour)) || !h[1].To.Equal(now) || h[1].Rollback {
		t.Errorf("history = %+v", h)
	}
	if tag, err := ms.Resolve(ctx, "scorer", "production"); err != nil || tag != a {
		t.Errorf("production tag: %s, %v; want %s", tag, err, a)
	}
	if note := moveNote(got); !strings.HasPrefix(note, ", rollback to a version this stage held from 2026-11-23 10:00 UTC to 2026-11-23 11:00 UTC; gate passed then: score > production.score (0.7): 0.8 ✓") {
		t.Errorf("progress note %q", note)
	}

	// staging never held 1.0.0: its gate is evaluated, and refuses it.
	if err := move("staging"); err == nil || !strings.Contains(err.Error(), "gate failed: score >= 0.85: 0.8 ✗") {
		t.Errorf("move to a version staging never held: %v, want its gate to refuse it", err)
	}
	if s := st.Stages["staging"]; s.ModelVersion != "1.1.0" || len(st.History["staging"]) != 0 {
		t.Errorf("a refused move recorded %+v, history %+v", s, st.History["staging"])
	}

	// A gate that passes is recorded with its values.
	ap.env.Config.Models["scorer"].Gates["staging"], _ = gate.Parse("score >= 0.5", nil)
	if err := move("staging"); err != nil {
		t.Fatal(err)
	}
	want := &state.GateResult{Expression: "score >= 0.5", Results: []string{"score >= 0.5: 0.8 ✓"}, Passed: true}
	if s := st.Stages["staging"]; s.Rollback != nil || !reflect.DeepEqual(s.Gate, want) {
		t.Errorf("recorded %+v with gate %+v, want gate %+v", s, s.Gate, want)
	}
	if note := moveNote(st.Stages["staging"]); note != ", gate score >= 0.5: 0.8 ✓" {
		t.Errorf("progress note %q", note)
	}
}
