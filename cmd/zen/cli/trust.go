package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zen-dev/zen/internal/trust"
	"github.com/zen-dev/zen/internal/workspace"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// verifiedFile remembers the signature manifests that verified, so that a
// plan checks each cached artifact's signature once (see package trust).
func verifiedFile(ws *workspace.Workspace) string {
	return filepath.Join(ws.Root, workspace.DataDir, "cache", "verified")
}

// publicKey returns the key a stack's artifacts are verified against, and
// its key id, without needing the private key where it can be helped:
//
//   - a declared signer's public_key file (relative to the repository);
//   - else a declared signer's private key, if it can be read here;
//   - for a stack without a signer, the repository's cosign.pub, or the
//     public half of the key pair zen made;
//   - nothing for a stack whose signer is "none", or when the repository
//     has no key pair yet (nothing was signed).
//
// A nil key with a non-empty warning means the stack signs but its key is
// not at hand: plan says so and checks no signatures.
func (s *session) publicKey(st *schema.Stack) (v *signature.Verifier, id, warning string, err error) {
	switch signerFlavor(st) {
	case signerNone:
		return nil, "", "", nil
	case "":
		priv, pub := keyFiles(s.ws)
		if _, err := os.Stat(pub); err == nil {
			return loadPublicKey(pub)
		}
		if _, err := os.Stat(priv); err == nil {
			_, id, v, err := s.signer(st)
			return v, id, "", err
		}
		return nil, "", "", nil // no key yet: nothing was signed
	}
	if p, _ := st.Signer["public_key"].(string); p != "" {
		if !filepath.IsAbs(p) {
			p = filepath.Join(s.ws.Root, filepath.FromSlash(p))
		}
		return loadPublicKey(p)
	}
	_, id, v, err = s.signer(st)
	if err != nil {
		return nil, "", fmt.Sprintf("signatures of cached artifacts not checked: %v (declare signer.public_key to check them without the private key)", err), nil
	}
	return v, id, "", nil
}

func loadPublicKey(path string) (*signature.Verifier, string, string, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, "", "", fmt.Errorf("public key: %w", err)
	}
	v, err := signature.LoadVerifier(pem)
	if err != nil {
		return nil, "", "", fmt.Errorf("public key %s: %w", path, err)
	}
	return v, keyID(pem), "", nil
}

// checker verifies the artifacts of store against v, with the run records
// of recs; nil without a key.
func (s *session) checker(store registry.Store, v *signature.Verifier, id string, recs state.Records) *trust.Checker {
	if v == nil {
		return nil
	}
	return trust.New(store.ArtifactRepository(), v, id, verifiedFile(s.ws), recs)
}

// checkPublicKey makes sure a declared signer.public_key is the public half
// of the key apply signs with: else everything apply signs would fail to
// verify in the next plan.
func (s *session) checkPublicKey(st *schema.Stack, signer *signature.Verifier) error {
	if st.Signer == nil {
		return nil
	}
	p, _ := st.Signer["public_key"].(string)
	if p == "" {
		return nil
	}
	v, _, _, err := s.publicKey(st)
	if err != nil {
		return fmt.Errorf("stack %s: signer: %w", st.Name, err)
	}
	if !v.Equal(signer) {
		return fmt.Errorf("stack %s: signer: public_key %s is not the public key of the signing key", st.Name, p)
	}
	return nil
}

// errKeyMismatch is returned when cosign.pub is not the public half of the
// local key pair.
var errKeyMismatch = errors.New("cosign.pub is not the public key of .zen/keys/cosign.key")

// relTo names p relative to root when it is inside it.
func relTo(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil && filepath.IsLocal(r) {
		return r
	}
	return p
}
