package signature_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/signature"
)

// key is a key pair made by GenerateKeyPair and loaded back.
type key struct {
	private, public []byte
	signer          *signature.Signer
	verifier        *signature.Verifier
}

func newKey(t testing.TB, password string) *key {
	t.Helper()
	priv, pub, err := signature.GenerateKeyPair([]byte(password))
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadSigner(priv, []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	v, err := signature.LoadVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	return &key{private: priv, public: pub, signer: s, verifier: v}
}

// Keys are made once: scrypt makes each one take a while.
var (
	keysOnce     sync.Once
	keyA, keyB   *key
	keysPassword = "correct horse"
)

func keys(t testing.TB) (a, b *key) {
	keysOnce.Do(func() {
		keyA = newKey(t, keysPassword)
		keyB = newKey(t, "")
	})
	return keyA, keyB
}

// newRepo starts an in-process registry and returns a repository in it.
func newRepo(t testing.TB) signature.Repository {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return modelRepo(t, strings.TrimPrefix(srv.URL, "http://")+"/ml")
}

// modelRepo opens a registry store on repository ("host:port/ml") and
// returns the repository of its model "fraud", "host:port/ml/models/fraud":
// signatures go through zen's store, as zen puts them.
func modelRepo(t testing.TB, repository string) signature.Repository {
	t.Helper()
	s, err := registry.OpenRemote(repository)
	if err != nil {
		t.Fatal(err)
	}
	return s.(registry.ModelStore).ModelRepository("fraud")
}

// pushImage pushes a small random image to repo and returns its digest.
func pushImage(t testing.TB, repo signature.Repository, tag string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(repo.Reference() + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func tagOf(digest, suffix string) string {
	return strings.Replace(digest, ":", "-", 1) + "." + suffix
}

// readManifest reads the manifest tagged tag.
func readManifest(t testing.TB, repo signature.Repository, tag string) *v1.Manifest {
	t.Helper()
	raw, err := repo.Manifest(context.Background(), tag)
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

func readBlob(t testing.TB, repo signature.Repository, h v1.Hash) []byte {
	t.Helper()
	b, err := repo.Blob(context.Background(), h.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func putManifest(t testing.TB, repo signature.Repository, tag string, m *v1.Manifest) {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.PutManifest(context.Background(), tag, raw); err != nil {
		t.Fatal(err)
	}
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func TestSignVerify(t *testing.T) {
	ctx := context.Background()
	a, b := keys(t)
	repo := newRepo(t)
	digest := pushImage(t, repo, "v1")
	other := pushImage(t, repo, "v2")

	wantErr(t, signature.Verify(ctx, repo, digest, a.verifier), signature.ErrUnsigned)
	if err := signature.Sign(ctx, repo, digest, a.signer); err != nil {
		t.Fatal(err)
	}
	if err := signature.Verify(ctx, repo, digest, a.verifier); err != nil {
		t.Fatalf("verify with the signing key: %v", err)
	}
	wantErr(t, signature.Verify(ctx, repo, digest, b.verifier), signature.ErrOtherKey)
	wantErr(t, signature.Verify(ctx, repo, other, a.verifier), signature.ErrUnsigned)

	// The format cosign writes and reads.
	m := readManifest(t, repo, tagOf(digest, "sig"))
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Config.MediaType != "application/vnd.oci.image.config.v1+json" || m.Subject != nil || m.ArtifactType != "" {
		t.Errorf("manifest: media type %q, config %q, subject %v, artifactType %q", m.MediaType, m.Config.MediaType, m.Subject, m.ArtifactType)
	}
	if len(m.Layers) != 1 {
		t.Fatalf("%d layers, want 1", len(m.Layers))
	}
	l := m.Layers[0]
	if l.MediaType != "application/vnd.dev.cosign.simplesigning.v1+json" {
		t.Errorf("layer media type %q", l.MediaType)
	}
	payload := readBlob(t, repo, l.Digest)
	want := `{"critical":{"identity":{"docker-reference":"` + repo.Reference() + `"},"image":{"docker-manifest-digest":"` + digest + `"},"type":"cosign container image signature"},"optional":null}`
	if string(payload) != want {
		t.Errorf("payload\n%s\nwant\n%s", payload, want)
	}
	if _, err := base64.StdEncoding.DecodeString(l.Annotations["dev.cosignproject.cosign/signature"]); err != nil || len(l.Annotations) != 1 {
		t.Errorf("annotations %v", l.Annotations)
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(readBlob(t, repo, m.Config.Digest), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.RootFS.Type != "layers" || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != l.Digest {
		t.Errorf("config rootfs %+v, want the layer digest", cfg.RootFS)
	}
}

func TestSignAppends(t *testing.T) {
	ctx := context.Background()
	a, b := keys(t)
	repo := newRepo(t)
	digest := pushImage(t, repo, "v1")
	tag := tagOf(digest, "sig")

	for range 2 {
		if err := signature.Sign(ctx, repo, digest, a.signer); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(readManifest(t, repo, tag).Layers); n != 1 {
		t.Fatalf("signed twice with one key: %d layers, want 1", n)
	}
	if err := signature.Sign(ctx, repo, digest, b.signer); err != nil {
		t.Fatal(err)
	}
	m := readManifest(t, repo, tag)
	if len(m.Layers) != 2 {
		t.Fatalf("signed with two keys: %d layers, want 2", len(m.Layers))
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(readBlob(t, repo, m.Config.Digest), &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.RootFS.DiffIDs) != 2 || cfg.RootFS.DiffIDs[0] != m.Layers[0].Digest || cfg.RootFS.DiffIDs[1] != m.Layers[1].Digest {
		t.Errorf("diff_ids %v, want the layer digests", cfg.RootFS.DiffIDs)
	}
	for _, k := range []*key{a, b} {
		if err := signature.Verify(ctx, repo, digest, k.verifier); err != nil {
			t.Error(err)
		}
	}
}

func TestVerifyTampered(t *testing.T) {
	ctx := context.Background()
	a, b := keys(t)

	t.Run("payload names another digest", func(t *testing.T) {
		repo := newRepo(t)
		digest := pushImage(t, repo, "v1")
		other := pushImage(t, repo, "v2")
		if err := signature.Sign(ctx, repo, digest, a.signer); err != nil {
			t.Fatal(err)
		}
		tag := tagOf(digest, "sig")
		m := readManifest(t, repo, tag)
		payload := bytes.Replace(readBlob(t, repo, m.Layers[0].Digest), []byte(digest), []byte(other), 1)
		h, size, err := v1.SHA256(bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.PutBlob(ctx, h.String(), payload); err != nil {
			t.Fatal(err)
		}
		m.Layers[0].Digest, m.Layers[0].Size = h, size
		putManifest(t, repo, tag, m)
		for _, k := range []*key{a, b} {
			wantErr(t, signature.Verify(ctx, repo, digest, k.verifier), signature.ErrBadSignature)
		}
		// Moved to the other digest's tag, the forgery names the right
		// digest but no key signed it: it cannot be told from another
		// key's signature.
		putManifest(t, repo, tagOf(other, "sig"), m)
		wantErr(t, signature.Verify(ctx, repo, other, a.verifier), signature.ErrOtherKey)
	})

	t.Run("signature replayed onto another digest", func(t *testing.T) {
		repo := newRepo(t)
		digest := pushImage(t, repo, "v1")
		other := pushImage(t, repo, "v2")
		if err := signature.Sign(ctx, repo, digest, a.signer); err != nil {
			t.Fatal(err)
		}
		putManifest(t, repo, tagOf(other, "sig"), readManifest(t, repo, tagOf(digest, "sig")))
		wantErr(t, signature.Verify(ctx, repo, other, a.verifier), signature.ErrBadSignature)
		if err := signature.Verify(ctx, repo, digest, a.verifier); err != nil {
			t.Error(err)
		}
	})

	t.Run("layer missing", func(t *testing.T) {
		repo := newRepo(t)
		digest := pushImage(t, repo, "v1")
		if err := signature.Sign(ctx, repo, digest, a.signer); err != nil {
			t.Fatal(err)
		}
		tag := tagOf(digest, "sig")
		m := readManifest(t, repo, tag)
		m.Layers[0].Digest = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
		putManifest(t, repo, tag, m)
		wantErr(t, signature.Verify(ctx, repo, digest, a.verifier), signature.ErrBadSignature)
	})
}

// slsa is a SLSA v0.2 provenance predicate, as cosign's --type
// slsaprovenance reads it: every field cosign re-marshals is present, so
// what cosign attests is the same JSON.
const slsa = `{"builder":{"id":"https://zen.dev/runner@v1"},"buildType":"https://zen.dev/step/v1","invocation":{"configSource":{"uri":"git+https://example.com/ml.git","digest":{"sha1":"8e4b7d2a1c0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d"},"entryPoint":"pipeline.cue"},"parameters":{"step":"train"}},"metadata":{"buildInvocationID":"run-1","completeness":{"parameters":true,"environment":false,"materials":true},"reproducible":true},"materials":[{"uri":"data/iris.csv","digest":{"sha256":"` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `"}}]}`

const slsaType = "https://slsa.dev/provenance/v0.2"

func jsonEqual(t testing.TB, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Errorf("got\n%s\nwant\n%s", gb, wb)
	}
}

func TestAttest(t *testing.T) {
	ctx := context.Background()
	a, b := keys(t)
	repo := newRepo(t)
	digest := pushImage(t, repo, "v1")
	other := pushImage(t, repo, "v2")

	_, err := signature.VerifyAttestation(ctx, repo, digest, slsaType, a.verifier)
	wantErr(t, err, signature.ErrUnsigned)
	for range 2 {
		if err := signature.Attest(ctx, repo, digest, slsaType, json.RawMessage(slsa), a.signer); err != nil {
			t.Fatal(err)
		}
	}
	got, err := signature.VerifyAttestation(ctx, repo, digest, slsaType, a.verifier)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, got, []byte(slsa))

	_, err = signature.VerifyAttestation(ctx, repo, digest, slsaType, b.verifier)
	wantErr(t, err, signature.ErrOtherKey)
	_, err = signature.VerifyAttestation(ctx, repo, digest, "https://spdx.dev/Document", a.verifier)
	wantErr(t, err, signature.ErrUnsigned)
	_, err = signature.VerifyAttestation(ctx, repo, other, slsaType, a.verifier)
	wantErr(t, err, signature.ErrUnsigned)
	// An attestation is not a signature.
	wantErr(t, signature.Verify(ctx, repo, digest, a.verifier), signature.ErrUnsigned)

	// The format cosign writes and reads.
	m := readManifest(t, repo, tagOf(digest, "att"))
	if len(m.Layers) != 1 {
		t.Fatalf("attested twice with one key: %d layers, want 1", len(m.Layers))
	}
	l := m.Layers[0]
	if l.MediaType != "application/vnd.dsse.envelope.v1+json" {
		t.Errorf("layer media type %q", l.MediaType)
	}
	if sig, ok := l.Annotations["dev.cosignproject.cosign/signature"]; !ok || sig != "" || l.Annotations["predicateType"] != slsaType {
		t.Errorf("annotations %v", l.Annotations)
	}
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     []byte `json:"payload"`
		Signatures  []struct {
			KeyID string `json:"keyid"`
			Sig   []byte `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(readBlob(t, repo, l.Digest), &env); err != nil {
		t.Fatal(err)
	}
	if env.PayloadType != "application/vnd.in-toto+json" || len(env.Signatures) != 1 {
		t.Errorf("envelope %+v", env)
	}
	var st struct {
		Type          string `json:"_type"`
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Name   string            `json:"name"`
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(env.Payload, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != "https://in-toto.io/Statement/v0.1" || st.PredicateType != slsaType || len(st.Subject) != 1 ||
		st.Subject[0].Name != repo.Reference() || "sha256:"+st.Subject[0].Digest["sha256"] != digest {
		t.Errorf("statement %+v", st)
	}

	// Another key's attestation is added beside the first; both verify.
	if err := signature.Attest(ctx, repo, digest, slsaType, json.RawMessage(slsa), b.signer); err != nil {
		t.Fatal(err)
	}
	if n := len(readManifest(t, repo, tagOf(digest, "att")).Layers); n != 2 {
		t.Fatalf("%d layers, want 2", n)
	}
	for _, k := range []*key{a, b} {
		if _, err := signature.VerifyAttestation(ctx, repo, digest, slsaType, k.verifier); err != nil {
			t.Error(err)
		}
	}

	if err := signature.Attest(ctx, repo, digest, slsaType, json.RawMessage(`[1]`), a.signer); err == nil {
		t.Error("attested a predicate that is not an object")
	}
}

func TestAttestationReplayed(t *testing.T) {
	ctx := context.Background()
	a, b := keys(t)
	repo := newRepo(t)
	digest := pushImage(t, repo, "v1")
	other := pushImage(t, repo, "v2")
	if err := signature.Attest(ctx, repo, digest, slsaType, json.RawMessage(slsa), a.signer); err != nil {
		t.Fatal(err)
	}
	putManifest(t, repo, tagOf(other, "att"), readManifest(t, repo, tagOf(digest, "att")))
	for _, k := range []*key{a, b} {
		_, err := signature.VerifyAttestation(ctx, repo, other, slsaType, k.verifier)
		wantErr(t, err, signature.ErrBadSignature)
	}
	if _, err := signature.VerifyAttestation(ctx, repo, digest, slsaType, a.verifier); err != nil {
		t.Error(err)
	}
}

func TestKeys(t *testing.T) {
	a, b := keys(t)
	block, _ := pem.Decode(a.private)
	if block == nil || block.Type != "ENCRYPTED SIGSTORE PRIVATE KEY" {
		t.Fatalf("private key PEM %q", a.private)
	}
	if block, _ := pem.Decode(a.public); block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("public key PEM %q", a.public)
	}

	for _, pw := range []string{"", keysPassword + " "} {
		_, err := signature.LoadSigner(a.private, []byte(pw))
		wantErr(t, err, signature.ErrWrongPassword)
	}
	_, err := signature.LoadSigner(b.private, []byte("x"))
	wantErr(t, err, signature.ErrWrongPassword)
	if _, err := signature.LoadSigner(b.private, nil); err != nil {
		t.Errorf("empty password as nil: %v", err)
	}

	// cosign's older PEM type holds the same encrypted key.
	block.Type = "ENCRYPTED COSIGN PRIVATE KEY"
	if _, err := signature.LoadSigner(pem.EncodeToMemory(block), []byte(keysPassword)); err != nil {
		t.Errorf("older PEM type: %v", err)
	}
	block.Type = "PRIVATE KEY"
	if _, err := signature.LoadSigner(pem.EncodeToMemory(block), []byte(keysPassword)); err == nil || errors.Is(err, signature.ErrWrongPassword) {
		t.Errorf("PEM type PRIVATE KEY: error %v, want an unsupported type", err)
	}
	for _, v := range []*signature.Verifier{a.verifier, a.signer.Public()} {
		if pub, err := v.PEM(); err != nil || !bytes.Equal(pub, a.public) {
			t.Errorf("PEM() = %q, %v; want the public key file %q", pub, err, a.public)
		}
	}
	if _, err := signature.LoadVerifier(a.private); err == nil {
		t.Error("LoadVerifier took a private key")
	}

	// Signer.Public verifies what the signer signs, as the loaded public key does.
	repo := newRepo(t)
	digest := pushImage(t, repo, "v1")
	ctx := context.Background()
	if err := signature.Sign(ctx, repo, digest, a.signer); err != nil {
		t.Fatal(err)
	}
	if err := signature.Verify(ctx, repo, digest, a.signer.Public()); err != nil {
		t.Error(err)
	}
}

func TestBadDigest(t *testing.T) {
	a, _ := keys(t)
	repo := newRepo(t)
	ctx := context.Background()
	for _, d := range []string{"", "sha256:abc", "sha512:" + strings.Repeat("0", 128), "latest"} {
		if err := signature.Sign(ctx, repo, d, a.signer); err == nil {
			t.Errorf("Sign(%q) succeeded", d)
		}
		if err := signature.Verify(ctx, repo, d, a.verifier); err == nil || errors.Is(err, signature.ErrUnsigned) {
			t.Errorf("Verify(%q) = %v, want a digest error", d, err)
		}
	}
}

// TestPlainKeys checks the unencrypted key pair zen keeps for the local
// stack when no password is set.
func TestPlainKeys(t *testing.T) {
	private, public, err := signature.GeneratePlainKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(private); block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("private key PEM %q", private)
	}
	s, err := signature.LoadSigner(private, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pub, err := s.Public().PEM(); err != nil || !bytes.Equal(pub, public) {
		t.Errorf("Public().PEM() = %q, %v; want %q", pub, err, public)
	}
	v, err := signature.LoadVerifier(public)
	if err != nil {
		t.Fatal(err)
	}
	repo := newRepo(t)
	digest := pushImage(t, repo, "v1")
	ctx := context.Background()
	if err := signature.Sign(ctx, repo, digest, s); err != nil {
		t.Fatal(err)
	}
	if err := signature.Verify(ctx, repo, digest, v); err != nil {
		t.Error(err)
	}
	if !v.Equal(s.Public()) {
		t.Error("the loaded public key is not Equal to the signer's")
	}
	other, _, err := signature.GeneratePlainKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other, private) {
		t.Error("two key pairs are the same")
	}
}
