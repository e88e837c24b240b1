package signature_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/signature"
)

// named is a repository under another name: the golden signature and
// attestation name goldenRef.
type named struct {
	signature.Repository
	ref string
}

func (r named) Reference() string { return r.ref }

// goldenRepo returns the repository of the model "fraud" in a new layout
// store, named goldenRef.
func goldenRepo(t *testing.T) signature.Repository {
	t.Helper()
	s, err := registry.OpenLayout(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return named{s.(registry.ModelStore).ModelRepository("fraud"), goldenRef}
}

// goldenRef is the repository the golden signature and attestation name.
const goldenRef = "registry.example/ml/models/fraud"

// goldenDigest is the manifest digest they are about.
const goldenDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// loadGolden reads testdata/golden, written by Sign and Attest as zen had
// them before they used sigstore's payload and go-securesystemslib's DSSE
// types (see testdata/golden/README), into repo.
func loadGolden(t *testing.T, repo signature.Repository) (pub, priv []byte) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join("testdata", "golden")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, sub := range []string{"blobs", "manifests"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			b := read(filepath.Join(sub, e.Name()))
			if sub == "blobs" {
				err = repo.PutBlob(ctx, strings.Replace(e.Name(), "-", ":", 1), b)
			} else {
				err = repo.PutManifest(ctx, e.Name(), b)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return read("cosign.pub"), read("cosign.key")
}

// goldenLayer returns the one layer of the golden manifest with suffix
// ("sig" or "att"), and its annotations.
func goldenLayer(t *testing.T, repo signature.Repository, suffix string) ([]byte, map[string]string) {
	t.Helper()
	m := readManifest(t, repo, tagOf(goldenDigest, suffix))
	if len(m.Layers) != 1 {
		t.Fatalf("%s: %d layers, want 1", suffix, len(m.Layers))
	}
	return readBlob(t, repo, m.Layers[0].Digest), m.Layers[0].Annotations
}

// TestGolden checks that a signature and an attestation recorded by earlier
// zen still verify, and that what zen writes now is byte for byte what it
// wrote then, but for the (randomised) ECDSA signatures.
func TestGolden(t *testing.T) {
	ctx := context.Background()
	old := goldenRepo(t)
	pubPEM, privPEM := loadGolden(t, old)
	v, err := signature.LoadVerifier(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadSigner(privPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := signature.Verify(ctx, old, goldenDigest, v); err != nil {
		t.Errorf("golden signature: %v", err)
	}
	got, err := signature.VerifyAttestation(ctx, old, goldenDigest, slsaType, v)
	if err != nil {
		t.Errorf("golden attestation: %v", err)
	} else {
		jsonEqual(t, got, []byte(slsa))
	}
	// Another digest: refused, the payload names the golden one.
	other := "sha256:" + strings.Repeat("ab", 32)
	for _, suffix := range []string{"sig", "att"} {
		putManifest(t, old, tagOf(other, suffix), readManifest(t, old, tagOf(goldenDigest, suffix)))
	}
	if err := signature.Verify(ctx, old, other, v); !errors.Is(err, signature.ErrBadSignature) {
		t.Errorf("golden signature replayed: %v, want ErrBadSignature", err)
	}
	if _, err := signature.VerifyAttestation(ctx, old, other, slsaType, v); !errors.Is(err, signature.ErrBadSignature) {
		t.Errorf("golden attestation replayed: %v, want ErrBadSignature", err)
	}

	now := goldenRepo(t)
	if err := signature.Sign(ctx, now, goldenDigest, s); err != nil {
		t.Fatal(err)
	}
	if err := signature.Attest(ctx, now, goldenDigest, slsaType, json.RawMessage(slsa), s); err != nil {
		t.Fatal(err)
	}
	oldPayload, oldAnn := goldenLayer(t, old, "sig")
	newPayload, newAnn := goldenLayer(t, now, "sig")
	if !bytes.Equal(newPayload, oldPayload) {
		t.Errorf("simple-signing payload changed:\nnow  %s\nthen %s", newPayload, oldPayload)
	}
	if len(newAnn) != len(oldAnn) {
		t.Errorf("signature layer annotations: now %v, then %v", newAnn, oldAnn)
	}
	oldEnv, _ := goldenLayer(t, old, "att")
	newEnv, _ := goldenLayer(t, now, "att")
	sigOf := func(env []byte) string {
		var e struct {
			Signatures []struct{ Sig string }
		}
		if err := json.Unmarshal(env, &e); err != nil || len(e.Signatures) != 1 {
			t.Fatalf("envelope %s: %v", env, err)
		}
		return e.Signatures[0].Sig
	}
	if b := bytes.Replace(newEnv, []byte(sigOf(newEnv)), []byte(sigOf(oldEnv)), 1); !bytes.Equal(b, oldEnv) {
		t.Errorf("DSSE envelope changed beyond its signature:\nnow  %s\nthen %s", b, oldEnv)
	}
}

// TestGoldenCosign checks that cosign verifies the golden signature and
// attestation.
func TestGoldenCosign(t *testing.T) {
	bin := findCosign(t)
	repo := modelRepo(t, startRegistry(t)+"/ml")
	pub, _ := loadGolden(t, repo)
	dir := t.TempDir()
	pubFile := writeFile(t, filepath.Join(dir, "cosign.pub"), pub)
	cosign := &cosignCLI{t: t, bin: bin, home: t.TempDir()}
	img := repo.Reference() + "@" + goldenDigest
	offline := []string{"--insecure-ignore-tlog=true", "--allow-http-registry"}
	cosign.ok(dir, "", append(append([]string{"verify", "--key", pubFile, "--output", "json"}, offline...), img)...)
	cosign.ok(dir, "", append(append([]string{"verify-attestation", "--key", pubFile, "--type", "slsaprovenance", "--output", "json"}, offline...), img)...)
}

// TestVerifyWrongType checks that a simple-signing payload of another type
// than cosign's is refused as a bad signature, as cosign refuses it.
func TestVerifyWrongType(t *testing.T) {
	ctx := context.Background()
	repo := goldenRepo(t)
	pub, _ := loadGolden(t, repo)
	v, err := signature.LoadVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	content, _ := goldenLayer(t, repo, "sig")
	forged := bytes.Replace(content, []byte(`"cosign container image signature"`), []byte(`"atomic container signature"`), 1)
	h := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(forged))}
	if err := repo.PutBlob(ctx, h.String(), forged); err != nil {
		t.Fatal(err)
	}
	m := readManifest(t, repo, tagOf(goldenDigest, "sig"))
	m.Layers[0].Digest, m.Layers[0].Size = h, int64(len(forged))
	putManifest(t, repo, tagOf(goldenDigest, "sig"), m)
	err = signature.Verify(ctx, repo, goldenDigest, v)
	if !errors.Is(err, signature.ErrBadSignature) || !strings.Contains(err.Error(), `type "atomic container signature"`) {
		t.Errorf("payload of another type: %v, want ErrBadSignature naming the type", err)
	}
}
