package signature_test

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/zen-dev/zen/internal/testregistry"
	"go/build"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/zen-dev/zen/registry/signature"
)

// findCosign finds the cosign CLI in PATH or where `go install` puts it.
// Without it the interop test is skipped, except in CI, which installs it:
//
//	go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5
func findCosign(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("cosign"); err == nil {
		return p
	}
	gobin := os.Getenv("GOBIN")
	if gobin == "" {
		gobin = filepath.Join(build.Default.GOPATH, "bin")
	}
	if p, err := exec.LookPath(filepath.Join(gobin, "cosign")); err == nil {
		return p
	}
	msg := "cosign CLI not found in PATH or " + gobin + "; install it with `go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5`"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// startRegistry starts a real registry process (Debian's docker-registry,
// distribution 2.8) on loopback, or the in-process one when it is not
// installed, and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Logf("docker-registry not installed (%v): using the in-process registry", err)
		srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	addr, stop, err := testregistry.Start(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr
}

// cosignCLI runs cosign with a home of its own, offline.
type cosignCLI struct {
	t    *testing.T
	bin  string
	home string
}

// run runs cosign in dir with args and COSIGN_PASSWORD=password, and
// returns its exit code and combined output.
func (c *cosignCLI) run(dir, password string, args ...string) (int, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + c.home,
		"DOCKER_CONFIG=" + filepath.Join(c.home, ".docker"),
		"TUF_ROOT=" + filepath.Join(c.home, ".sigstore"),
		"COSIGN_PASSWORD=" + password,
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	default:
		c.t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
		return -1, ""
	}
}

// ok runs cosign and fails the test unless it exits 0.
func (c *cosignCLI) ok(dir, password string, args ...string) string {
	c.t.Helper()
	code, out := c.run(dir, password, args...)
	if code != 0 {
		c.t.Fatalf("cosign %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestCosignInterop checks zen's signatures and attestations against the
// real cosign CLI, both ways, on a real registry.
func TestCosignInterop(t *testing.T) {
	bin := findCosign(t)
	ctx := context.Background()
	cosign := &cosignCLI{t: t, bin: bin, home: t.TempDir()}
	dir := t.TempDir()
	a, b := keys(t) // a has a password, b the empty one
	aPub := writeFile(t, filepath.Join(dir, "a.pub"), a.public)
	bKey := writeFile(t, filepath.Join(dir, "b.key"), b.private)
	bPub := writeFile(t, filepath.Join(dir, "b.pub"), b.public)
	prov := writeFile(t, filepath.Join(dir, "prov.json"), []byte(slsa))

	repo := modelRepo(t, startRegistry(t)+"/ml")
	digest := pushImage(t, repo, "v1")
	img := repo.Reference() + "@" + digest
	offline := []string{"--insecure-ignore-tlog=true", "--allow-http-registry"}
	verify := func(pub string) []string {
		return append([]string{"verify", "--key", pub, "--output", "json"}, offline...)
	}
	verifyAtt := func(pub string) []string {
		return append([]string{"verify-attestation", "--key", pub, "--type", "slsaprovenance", "--output", "json"}, offline...)
	}

	t.Run("zen signs, cosign verifies", func(t *testing.T) {
		cosign.t = t
		if err := signature.Sign(ctx, repo, digest, a.signer); err != nil {
			t.Fatal(err)
		}
		if err := signature.Attest(ctx, repo, digest, slsaType, json.RawMessage(slsa), a.signer); err != nil {
			t.Fatal(err)
		}
		cosign.ok(dir, "", append(verify(aPub), img)...)
		cosign.ok(dir, "", append(verifyAtt(aPub), img)...)
		// Another key: cosign refuses, as zen does.
		for _, args := range [][]string{verify(bPub), verifyAtt(bPub)} {
			code, out := cosign.run(dir, "", append(args, img)...)
			if code == 0 {
				t.Errorf("cosign %s with another key: exit 0\n%s", args[0], out)
			}
			t.Logf("cosign %s with another key: exit %d: %s", args[0], code, lastLine(out))
		}
		// Replayed onto another image, cosign refuses them, as zen does.
		replay := pushImage(t, repo, "replay")
		for _, suffix := range []string{"sig", "att"} {
			putManifest(t, repo, tagOf(replay, suffix), readManifest(t, repo, tagOf(digest, suffix)))
		}
		if err := signature.Verify(ctx, repo, replay, a.verifier); !errors.Is(err, signature.ErrBadSignature) {
			t.Errorf("zen verify of a replayed signature: %v, want ErrBadSignature", err)
		}
		if _, err := signature.VerifyAttestation(ctx, repo, replay, slsaType, a.verifier); !errors.Is(err, signature.ErrBadSignature) {
			t.Errorf("zen verify of a replayed attestation: %v, want ErrBadSignature", err)
		}
		for _, args := range [][]string{verify(aPub), verifyAtt(aPub)} {
			code, out := cosign.run(dir, "", append(args, repo.Reference()+"@"+replay)...)
			if code == 0 {
				t.Errorf("cosign %s of a replayed signature: exit 0\n%s", args[0], out)
			}
			t.Logf("cosign %s of a replayed signature: exit %d: %s", args[0], code, lastLine(out))
		}
	})

	t.Run("cosign signs, zen verifies", func(t *testing.T) {
		cosign.t = t
		sign := []string{"sign", "--key", bKey, "--tlog-upload=false", "--yes", "--allow-http-registry"}
		attest := []string{"attest", "--key", bKey, "--type", "slsaprovenance", "--predicate", prov, "--tlog-upload=false", "--yes", "--allow-http-registry"}
		cosign.ok(dir, "", append(sign, img)...)
		cosign.ok(dir, "", append(attest, img)...)
		if err := signature.Verify(ctx, repo, digest, b.verifier); err != nil {
			t.Errorf("zen verify of cosign's signature: %v", err)
		}
		got, err := signature.VerifyAttestation(ctx, repo, digest, slsaType, b.verifier)
		if err != nil {
			t.Errorf("zen verify of cosign's attestation: %v", err)
		} else {
			jsonEqual(t, got, []byte(slsa))
		}
		// cosign appended to zen's manifests, and zen appends to cosign's.
		if err := signature.Verify(ctx, repo, digest, a.verifier); err != nil {
			t.Errorf("zen's signature after cosign's: %v", err)
		}
		if _, err := signature.VerifyAttestation(ctx, repo, digest, slsaType, a.verifier); err != nil {
			t.Errorf("zen's attestation after cosign's: %v", err)
		}
		if n := len(readManifest(t, repo, tagOf(digest, "sig")).Layers); n != 2 {
			t.Errorf("signature manifest has %d layers, want 2", n)
		}

		// On an image zen never touched.
		fresh := pushImage(t, repo, "v2")
		cosign.ok(dir, "", append(sign, repo.Reference()+"@"+fresh)...)
		if err := signature.Verify(ctx, repo, fresh, b.verifier); err != nil {
			t.Errorf("zen verify of cosign's signature: %v", err)
		}
		if err := signature.Verify(ctx, repo, fresh, a.verifier); !errors.Is(err, signature.ErrOtherKey) {
			t.Errorf("zen verify with another key: %v, want ErrOtherKey", err)
		}
		if err := signature.Sign(ctx, repo, fresh, a.signer); err != nil {
			t.Fatal(err)
		}
		cosign.ok(dir, "", append(verify(aPub), repo.Reference()+"@"+fresh)...)
		cosign.ok(dir, "", append(verify(bPub), repo.Reference()+"@"+fresh)...)
	})

	t.Run("cosign's keys", func(t *testing.T) {
		cosign.t = t
		kdir := t.TempDir()
		cosign.ok(kdir, "", "generate-key-pair")
		priv, err := os.ReadFile(filepath.Join(kdir, "cosign.key"))
		if err != nil {
			t.Fatal(err)
		}
		pub, err := os.ReadFile(filepath.Join(kdir, "cosign.pub"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := signature.LoadSigner(priv, []byte{})
		if err != nil {
			t.Fatal(err)
		}
		v, err := signature.LoadVerifier(pub)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := signature.LoadSigner(priv, []byte("not it")); !errors.Is(err, signature.ErrWrongPassword) {
			t.Errorf("wrong password: %v, want ErrWrongPassword", err)
		}
		third := pushImage(t, repo, "v3")
		if err := signature.Sign(ctx, repo, third, s); err != nil {
			t.Fatal(err)
		}
		if err := signature.Verify(ctx, repo, third, v); err != nil {
			t.Error(err)
		}
		cosign.ok(dir, "", append(verify(filepath.Join(kdir, "cosign.pub")), repo.Reference()+"@"+third)...)
	})
}
