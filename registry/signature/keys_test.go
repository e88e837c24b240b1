package signature_test

import (
	"bytes"
	"encoding/pem"
	"testing"

	"github.com/zen-dev/zen/registry/signature"
)

// TestOpenKeys checks the key pair zen makes for a repository: cosign's
// encrypted format with the empty password, which LoadSigner reads.
func TestOpenKeys(t *testing.T) {
	private, public, err := signature.GenerateOpenKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(private); block == nil || block.Type != "ENCRYPTED SIGSTORE PRIVATE KEY" {
		t.Fatalf("private key PEM %q", private)
	}
	if signature.IsPlainKey(private) {
		t.Error("IsPlainKey of an encrypted key = true")
	}
	s, err := signature.LoadSigner(private, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pub, err := s.Public().PEM(); err != nil || !bytes.Equal(pub, public) {
		t.Errorf("Public().PEM() = %q, %v; want %q", pub, err, public)
	}
	if _, err := signature.LoadSigner(private, []byte("x")); err == nil {
		t.Error("LoadSigner with a password other than the empty one succeeded")
	}
}

// TestConvertPlainKey checks that a plain PKCS#8 key, as zen wrote the
// local stack's before, becomes cosign's format with the same public key.
func TestConvertPlainKey(t *testing.T) {
	plain, public, err := signature.GeneratePlainKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if !signature.IsPlainKey(plain) {
		t.Fatal("IsPlainKey of a plain key = false")
	}
	for _, password := range []string{"", "pw"} {
		converted, err := signature.ConvertPlainKey(plain, []byte(password))
		if err != nil {
			t.Fatal(err)
		}
		if block, _ := pem.Decode(converted); block == nil || block.Type != "ENCRYPTED SIGSTORE PRIVATE KEY" {
			t.Fatalf("converted PEM %q", converted)
		}
		s, err := signature.LoadSigner(converted, []byte(password))
		if err != nil {
			t.Fatal(err)
		}
		if pub, err := s.Public().PEM(); err != nil || !bytes.Equal(pub, public) {
			t.Errorf("password %q: converted key's public half = %q, %v; want %q", password, pub, err, public)
		}
	}
	if _, err := signature.ConvertPlainKey(public, nil); err == nil {
		t.Error("ConvertPlainKey of a public key succeeded")
	}
}

// BenchmarkLoadSigner measures what loading the signing key costs every
// apply, for each kind of key zen reads.
func BenchmarkLoadSigner(b *testing.B) {
	plain, _, err := signature.GeneratePlainKeyPair()
	if err != nil {
		b.Fatal(err)
	}
	open, _, err := signature.GenerateOpenKeyPair()
	if err != nil {
		b.Fatal(err)
	}
	cosign, _, err := signature.GenerateKeyPair(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range []struct {
		name string
		pem  []byte
	}{{"plain", plain}, {"open", open}, {"cosign", cosign}} {
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := signature.LoadSigner(k.pem, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
