package verify_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/provenance"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/registry/verify"
	"github.com/zen-dev/zen/state"
)

func signer(t *testing.T) *signature.Signer {
	t.Helper()
	priv, _, err := signature.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadSigner(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// push stores content as an artifact of store, signed by s and attested
// as b says (neither when s is nil).
func push(t *testing.T, store registry.Store, content string, s *signature.Signer, b *provenance.Build) string {
	t.Helper()
	ctx := context.Background()
	f := filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := store.Push(ctx, f, "file")
	if err != nil {
		t.Fatal(err)
	}
	if s == nil {
		return d.Digest
	}
	repo := store.ArtifactRepository()
	if err := signature.Sign(ctx, repo, d.Digest, s); err != nil {
		t.Fatal(err)
	}
	pred, err := b.Predicate()
	if err != nil {
		t.Fatal(err)
	}
	if err := signature.Attest(ctx, repo, d.Digest, provenance.Type, pred, s); err != nil {
		t.Fatal(err)
	}
	return d.Digest
}

type runs map[string]*state.Run

func (r runs) Run(id string) (*state.Run, bool, error) { x, ok := r[id]; return x, ok, nil }

// TestArtifactKinds checks that each way an artifact fails is its own Kind.
func TestArtifactKinds(t *testing.T) {
	ctx := context.Background()
	store, err := registry.OpenLayout(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	key, other := signer(t), signer(t)
	in := map[string]string{"data": "sha256:" + strings.Repeat("a", 64)}
	made := &provenance.Build{Entry: "p.train.model", Run: "r1", Commit: "c1", Inputs: in}

	good := push(t, store, "good", key, made)
	unsigned := push(t, store, "unsigned", nil, nil)
	byOther := push(t, store, "other", other, made)
	forged := push(t, store, "forged", key, &provenance.Build{Entry: "p.train.model", Run: "not-a-zen-run", Commit: "c1", Inputs: in})
	// Made first by run r0's step p.prep.out; r1's train.model stored the
	// same bytes and relies on r0's attestation.
	shared := push(t, store, "shared", key, &provenance.Build{Entry: "p.prep.out", Run: "r0", Commit: "c0"})
	recs := runs{"r0": {ID: "r0", Pipeline: "p", SourceCommit: "c0", Steps: map[string]*state.StepResult{
		"prep": {Outputs: map[string]state.Artifact{"out": {Digest: shared}}},
	}}}
	missing := "sha256:" + strings.Repeat("e", 64)

	v := &verify.Verifier{Key: key.Public(), Made: verify.MadeBy(recs)}
	for _, tt := range []struct {
		name   string
		digest string
		kind   verify.Kind
		sameAs string
	}{
		{"good", good, 0, ""},
		{"missing", missing, verify.Missing, ""},
		{"unsigned", unsigned, verify.Unsigned, ""},
		{"another key", byOther, verify.OtherKey, ""},
		{"another run", forged, verify.ProvenanceMismatch, ""},
		{"same bytes as a recorded step", shared, 0, "p.prep.out in run r0"},
	} {
		res, err := v.Artifact(ctx, store, tt.digest, made, true)
		if got := verify.KindOf(err); got != tt.kind || (tt.kind == 0 && err != nil) {
			t.Errorf("%s: kind %v (%v), want %v", tt.name, got, err, tt.kind)
		}
		if res.SameAs != tt.sameAs {
			t.Errorf("%s: same as %q, want %q", tt.name, res.SameAs, tt.sameAs)
		}
	}

	// The same attestation does not stand when the record that it names
	// says that step stored other bytes, or the run is not recorded.
	recs["r0"].Steps["prep"].Outputs["out"] = state.Artifact{Digest: good}
	if _, err := v.Artifact(ctx, store, shared, made, false); verify.KindOf(err) != verify.ProvenanceMismatch {
		t.Errorf("other bytes recorded: %v", err)
	}
	delete(recs, "r0")
	if _, err := v.Artifact(ctx, store, shared, made, false); verify.KindOf(err) != verify.ProvenanceMismatch {
		t.Errorf("run not recorded: %v", err)
	}
}

// TestModelFromAnotherRun verifies a version declared by one commit and
// made from the output of an experiment run of another: the attestation
// must name the run, the declaring commit and the commit the run ran
// from, as the record does, and the record must agree with the run's. A
// version recorded and attested before zen kept the run's commit still
// verifies.
func TestModelFromAnotherRun(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := registry.OpenLayout(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ms := store.(registry.ModelStore)
	key := signer(t)
	repo := ms.ModelRepository("scorer")
	in := map[string]string{"data": "sha256:" + strings.Repeat("a", 64)}
	recs := runs{"exp": {ID: "exp", Pipeline: "p", SourceCommit: "c1", Experiment: true, Steps: map[string]*state.StepResult{
		"train": {Status: state.StatusSucceeded, Fingerprint: &state.Fingerprint{Inputs: in}},
	}}}
	version := func(v string, attested *provenance.Build) *state.ModelVersion {
		t.Helper()
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
		if err := signature.Sign(ctx, repo, desc.Digest, key); err != nil {
			t.Fatal(err)
		}
		pred, err := attested.Predicate()
		if err != nil {
			t.Fatal(err)
		}
		if err := signature.Attest(ctx, repo, desc.Digest, provenance.Type, pred, key); err != nil {
			t.Fatal(err)
		}
		return &state.ModelVersion{Model: "scorer", ModelVersion: v, Digest: desc.Digest, Pipeline: "p", Step: "train", Output: "model",
			RunID: attested.Run, SourceCommit: attested.Commit, RunCommit: attested.RunCommit, RunDirty: attested.RunDirty}
	}
	check := func(mv *state.ModelVersion) error {
		want, err := verify.ModelBuild(recs, mv)
		if err != nil {
			return err
		}
		return (&verify.Verifier{Key: key.Public()}).Model(ctx, ms, "scorer", mv.ModelVersion, mv.Digest, want, true)
	}

	mv := version("1.0.0", &provenance.Build{Entry: "p.train.model", Run: "exp", Commit: "c2", RunCommit: "c1", Inputs: in})
	if err := check(mv); err != nil {
		t.Fatalf("a version from an experiment of another commit: %v", err)
	}
	for _, tt := range []struct {
		name string
		edit func(*state.ModelVersion)
		want string
	}{
		{"another declaring commit", func(m *state.ModelVersion) { m.SourceCommit = "c3" }, "names commit c2, the record c3"},
		{"the run's commit edited in the version's record", func(m *state.ModelVersion) { m.RunCommit = "c2" }, "the version's record names run exp from commit c2, the run's record from c1"},
		{"uncommitted changes edited in", func(m *state.ModelVersion) { m.RunDirty = "sha256:" + strings.Repeat("d", 64) }, "the version's record names run exp from commit c1 with uncommitted changes sha256:dddd"},
	} {
		edited := *mv
		tt.edit(&edited)
		if err := check(&edited); verify.KindOf(err) != verify.ProvenanceMismatch || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want a provenance mismatch saying %q", tt.name, err, tt.want)
		}
	}
	// Both records edited alike: the attestation still tells.
	recs["exp"].SourceCommit = "c2"
	edited := *mv
	edited.RunCommit = "c2"
	if err := check(&edited); verify.KindOf(err) != verify.ProvenanceMismatch || !strings.Contains(err.Error(), "names run exp from commit c1, the record from c2") {
		t.Errorf("both records edited: %v", err)
	}
	recs["exp"].SourceCommit = "c1"

	// A record without the run's commit (as an older zen would read one)
	// checks none of it, whatever the attestation names.
	stripped := *mv
	stripped.RunCommit = ""
	if err := check(&stripped); err != nil {
		t.Errorf("a record that names no run's commit: %v", err)
	}

	// Recorded and attested before zen named the run's commit.
	old := version("0.9.0", &provenance.Build{Entry: "p.train.model", Run: "exp", Commit: "c2", Inputs: in})
	if old.RunCommit != "" {
		t.Fatal("old record names the run's commit")
	}
	if err := check(old); err != nil {
		t.Errorf("a version recorded before zen kept the run's commit: %v", err)
	}
	// An old attestation does not stand for a record that names the run's
	// commit.
	old.RunCommit = "c1"
	if err := check(old); verify.KindOf(err) != verify.ProvenanceMismatch || !strings.Contains(err.Error(), "does not name the commit run exp ran from") {
		t.Errorf("old attestation, new record: %v", err)
	}
}

// TestArtifactImage verifies an artifact of a step run in an image: the
// attestation must name the image the run's record pins; a record of a
// step on the host names none and compares none.
func TestArtifactImage(t *testing.T) {
	ctx := context.Background()
	store, err := registry.OpenLayout(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	key := signer(t)
	img := "127.0.0.1:5000/base@sha256:" + strings.Repeat("b", 64)
	moved := "127.0.0.1:5000/base@sha256:" + strings.Repeat("c", 64)
	inImage := push(t, store, "in image", key, &provenance.Build{Entry: "p.s.out", Run: "r1", Commit: "c1", Image: img})
	onHost := push(t, store, "on host", key, &provenance.Build{Entry: "p.s.out", Run: "r1", Commit: "c1"})
	record := func(image string) *state.Run {
		return &state.Run{ID: "r1", Pipeline: "p", SourceCommit: "c1", Steps: map[string]*state.StepResult{
			"s": {Fingerprint: &state.Fingerprint{Image: image}},
		}}
	}
	v := &verify.Verifier{Key: key.Public()}
	for _, tt := range []struct {
		name, digest, image string
		kind                verify.Kind
	}{
		{"the recorded image", inImage, img, 0},
		{"another image recorded", inImage, moved, verify.ProvenanceMismatch},
		{"attested without the recorded image", onHost, img, verify.ProvenanceMismatch},
		{"a record without an image", onHost, "", 0},
	} {
		want, err := verify.ArtifactBuild(nil, record(tt.image), "s", "out")
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Artifact(ctx, store, tt.digest, want, false)
		if got := verify.KindOf(err); got != tt.kind || (tt.kind == 0 && err != nil) {
			t.Errorf("%s: kind %v (%v), want %v", tt.name, got, err, tt.kind)
		}
	}
}
