package trust_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/zen-dev/zen/internal/trust"
	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/provenance"
	"github.com/zen-dev/zen/registry/signature"
)

// countingRepo counts the blobs read through it: verifying a signature
// reads its payload, a remembered one does not.
type countingRepo struct {
	signature.Repository
	blobs atomic.Int32
}

func (r *countingRepo) Blob(ctx context.Context, digest string) ([]byte, error) {
	r.blobs.Add(1)
	return r.Repository.Blob(ctx, digest)
}

func keyPair(t *testing.T) (*signature.Signer, *signature.Verifier) {
	t.Helper()
	priv, _, err := signature.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadSigner(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, s.Public()
}

func TestChecker(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := registry.OpenLayout(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	var digests []string
	for _, content := range []string{"one", "two"} {
		f := filepath.Join(dir, content)
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := store.Push(ctx, f, "file")
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.Digest)
	}
	signed, unsigned := digests[0], digests[1]
	key, v := keyPair(t)
	other, otherV := keyPair(t)
	repo := &countingRepo{Repository: store.ArtifactRepository()}
	if err := signature.Sign(ctx, repo, signed, key); err != nil {
		t.Fatal(err)
	}
	made := &provenance.Build{Entry: "p.s.out", Run: "r1", Commit: "c1", Inputs: map[string]string{}}
	pred, err := made.Predicate()
	if err != nil {
		t.Fatal(err)
	}
	if err := signature.Attest(ctx, repo, signed, provenance.Type, pred, key); err != nil {
		t.Fatal(err)
	}
	memory := filepath.Join(dir, "cache", "verified")

	c := trust.New(repo, v, "key", memory, nil)
	if err := c.Verify(ctx, signed, made); err != nil {
		t.Fatalf("Verify(signed) = %v", err)
	}
	var u *trust.Untrusted
	if err := c.Verify(ctx, unsigned, made); !errors.As(err, &u) || u.Kind != "not signed" || !errors.Is(err, plan.ErrUntrusted) || !errors.Is(err, signature.ErrUnsigned) {
		t.Errorf("Verify(unsigned) = %v, want an Untrusted not signed wrapping plan.ErrUntrusted", err)
	}
	if err := trust.New(repo, otherV, "other", "", nil).Verify(ctx, signed, made); !errors.As(err, &u) || u.Kind != "signed by another key" {
		t.Errorf("Verify with another key = %v", err)
	}
	// Signed by the key, but attested as made by another run than the
	// cache entry records: not reused.
	other1 := &provenance.Build{Entry: "p.s.out", Run: "not-a-zen-run", Inputs: map[string]string{}}
	if err := c.Verify(ctx, signed, other1); !errors.As(err, &u) || u.Kind != "provenance does not match the record" {
		t.Errorf("Verify of another run's output = %v, want provenance does not match the record", err)
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}

	// A new Checker (the next plan) remembers: no signature is read again.
	repo.blobs.Store(0)
	c2 := trust.New(repo, v, "key", memory, nil)
	if err := c2.Verify(ctx, signed, made); err != nil {
		t.Fatalf("remembered Verify = %v", err)
	}
	if n := repo.blobs.Load(); n != 0 {
		t.Errorf("remembered Verify read %d blobs, want 0", n)
	}
	// The memory is per key: another key id verifies from scratch.
	if err := trust.New(repo, v, "key2", memory, nil).Verify(ctx, signed, made); err != nil || repo.blobs.Load() == 0 {
		t.Errorf("Verify under another key id = %v after %d blob reads", err, repo.blobs.Load())
	}

	// A signature added by another key is a new signature manifest: it is
	// verified again, and still passes on the first signature.
	if err := signature.Sign(ctx, repo, signed, other); err != nil {
		t.Fatal(err)
	}
	repo.blobs.Store(0)
	if err := trust.New(repo, v, "key", memory, nil).Verify(ctx, signed, made); err != nil || repo.blobs.Load() == 0 {
		t.Errorf("Verify after the signatures changed = %v after %d blob reads, want a fresh check", err, repo.blobs.Load())
	}

	// A signature manifest replaced by another artifact's: caught, though
	// the artifact had verified before.
	if err := signature.Sign(ctx, repo, unsigned, key); err != nil {
		t.Fatal(err)
	}
	ar := store.ArtifactRepository()
	raw, err := ar.Manifest(ctx, "sha256-"+unsigned[len("sha256:"):]+".sig")
	if err != nil {
		t.Fatal(err)
	}
	if err := ar.PutManifest(ctx, "sha256-"+signed[len("sha256:"):]+".sig", raw); err != nil {
		t.Fatal(err)
	}
	if err := trust.New(repo, v, "key", memory, nil).Verify(ctx, signed, made); !errors.As(err, &u) || u.Kind != "bad signature" {
		t.Errorf("Verify with another artifact's signature = %v, want bad signature", err)
	}
	if err := trust.New(repo, v, "key", memory, nil).Verify(ctx, "md5:abc", made); err == nil || errors.Is(err, plan.ErrUntrusted) {
		t.Errorf("Verify(md5:abc) = %v, want a plain error", err)
	}
}
