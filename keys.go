package zen

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"

	"github.com/zen-dev/zen/internal/trust"
	"github.com/zen-dev/zen/internal/workspace"
	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// keyFiles is where zen keeps the repository's key pair, which every stack
// without a signer signs with: the private key under .zen (ignored by
// git, never stored), the public key at the root, for the user to commit.
func keyFiles(ws *workspace.Workspace) (private, public string) {
	return filepath.Join(ws.Root, workspace.DataDir, "keys", "cosign.key"), filepath.Join(ws.Root, "cosign.pub")
}

// KeyFiles are the paths of the repository's key pair: the private key
// under .zen (ignored by git), the public key cosign.pub at the root.
func (p *Project) KeyFiles() (private, public string) { return keyFiles(p.ws) }

// KeyID names a public key in records: sha256 of its PEM.
func KeyID(pub []byte) string {
	s := sha256.Sum256(pub)
	return "sha256:" + hex.EncodeToString(s[:])
}

// The signer flavors a stack declares. A stack without a signer signs with
// the repository's key pair (KeyFiles).
const (
	SignerCosign = "cosign"
	SignerNone   = "none" // signs nothing: the only way to unsigned versions
)

// SignerFlavor is the stack's declared signer flavor, "" for none declared.
func SignerFlavor(st *schema.Stack) string {
	if st.Signer == nil {
		return ""
	}
	f, _ := st.Signer["flavor"].(string)
	return f
}

// errKeyMismatch is returned when cosign.pub is not the public half of the
// local key pair.
var errKeyMismatch = errors.New("cosign.pub is not the public key of .zen/keys/cosign.key")

// signed is a project's signer, loaded once: decrypting a key is slow.
type signed struct {
	s   *signature.Signer
	id  string
	v   *signature.Verifier
	err error
}

// signer returns the stack's signer, its key id, and the verifier stage
// moves check against. A stack with a signer: {key: {secret: NAME}} uses
// that cosign key (PEM, or a path to one; password Options.Password).
// A stack without a signer uses the repository's key pair, which zen
// makes on first use. Only signer: flavor: "none" signs nothing.
func (p *Project) signer(st *schema.Stack) (*signature.Signer, string, *signature.Verifier, error) {
	sg := p.signed[st.Name]
	if sg == nil {
		sg = &signed{}
		sg.s, sg.id, sg.v, sg.err = p.loadSigner(st)
		if p.signed == nil {
			p.signed = map[string]*signed{}
		}
		p.signed[st.Name] = sg
	}
	return sg.s, sg.id, sg.v, sg.err
}

// Signer returns what the stack signs with: the signer, its key id, and
// the verifier stage moves check against; all nil for a stack whose
// signer is "none". A declared signer.public_key is checked against the
// private key's public half. The repository's key pair is made here on
// first use. A project loads each stack's signer once.
func (p *Project) Signer(st *schema.Stack) (*signature.Signer, string, *signature.Verifier, error) {
	signer, keyID, verifier, err := p.signer(st)
	if err == nil && signer != nil {
		err = p.checkPublicKey(st, verifier)
	}
	return signer, keyID, verifier, err
}

// Signing tells plan how apply would sign on st, reading no private key:
// a stack that opts out marks what it makes unsigned, and a stack without
// a signer whose repository key is missing from this clone (a CI job, a
// fresh clone: cosign.pub is committed, .zen/keys/cosign.key is not)
// refuses to make versions or move stages. A declared signer whose secret
// is not set here is not refused: a plan for a pull request runs without
// the secrets apply has.
func (p *Project) Signing(st *schema.Stack) plan.Signing {
	switch SignerFlavor(st) {
	case SignerNone:
		return plan.Signing{Unsigned: fmt.Sprintf("stack %s: signer none", st.Name)}
	case "":
		priv, pub := keyFiles(p.ws)
		if _, err := os.Stat(priv); errors.Is(err, fs.ErrNotExist) {
			if _, err := os.Stat(pub); err == nil {
				return plan.Signing{Refused: p.missingKey(st)}
			}
		}
	}
	return plan.Signing{}
}

// missingKey says that the repository's private key is not in this clone,
// and what to do.
func (p *Project) missingKey(st *schema.Stack) string {
	priv, pub := keyFiles(p.ws)
	return fmt.Sprintf("stack %s signs with the repository's key pair, and %s has no private key %s in this clone: copy the key here, or declare signer: {flavor: \"cosign\", key: {secret: \"cosign_key\"}, public_key: %q} on stack %s and set the secret (ZEN_SECRET_COSIGN_KEY) to the key",
		st.Name, relTo(p.ws.Root, pub), relTo(p.ws.Root, priv), relTo(p.ws.Root, pub), st.Name)
}

func (p *Project) loadSigner(st *schema.Stack) (*signature.Signer, string, *signature.Verifier, error) {
	password := p.opts.Password
	switch SignerFlavor(st) {
	case SignerNone:
		return nil, "", nil, nil
	case SignerCosign:
		return p.secretSigner(st, password)
	case "":
		return p.repositorySigner(st, password)
	default:
		f := st.Signer["flavor"]
		return nil, "", nil, fmt.Errorf("stack %s: unknown signer flavor %v (known: cosign, none)", st.Name, f)
	}
}

// secret looks a secret up with Options.Secret.
func (p *Project) secret(name string) (string, error) {
	if p.opts.Secret == nil {
		return "", fmt.Errorf("secret %s is not set: no secrets were given", name)
	}
	return p.opts.Secret(name)
}

// secretSigner loads the key of a signer: {flavor: "cosign", key: {secret: NAME}}.
func (p *Project) secretSigner(st *schema.Stack, password []byte) (*signature.Signer, string, *signature.Verifier, error) {
	ref, _ := st.Signer["key"].(map[string]any)
	name, _ := ref["secret"].(string)
	if name == "" {
		return nil, "", nil, fmt.Errorf("stack %s: signer needs key: {secret: NAME}", st.Name)
	}
	val, err := p.secret(name)
	if err != nil {
		return nil, "", nil, fmt.Errorf("stack %s: signer key: %w", st.Name, err)
	}
	pem := []byte(val)
	if !strings.Contains(val, "-----BEGIN") {
		if pem, err = os.ReadFile(val); err != nil {
			// The value is a secret even when it is not a key: the
			// message names the secret, never its value.
			why := "cannot be read"
			if errors.Is(err, fs.ErrNotExist) {
				why = "does not exist"
			}
			return nil, "", nil, fmt.Errorf("stack %s: signer key: secret %s is neither a PEM key nor the path of a file that holds one (the file it names %s)", st.Name, name, why)
		}
	}
	sg, err := signature.LoadSigner(pem, password)
	if err != nil {
		return nil, "", nil, fmt.Errorf("stack %s: signer key (secret %s): %w", st.Name, name, err)
	}
	v := sg.Public()
	pub, err := v.PEM()
	if err != nil {
		return nil, "", nil, err
	}
	return sg, KeyID(pub), v, nil
}

// repositorySigner loads the repository's key pair, making it on first
// use, for a stack that declares no signer.
func (p *Project) repositorySigner(st *schema.Stack, password []byte) (*signature.Signer, string, *signature.Verifier, error) {
	priv, pubPath := keyFiles(p.ws)
	committed, err := os.ReadFile(pubPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", nil, err
	}
	key, err := os.ReadFile(priv)
	if errors.Is(err, os.ErrNotExist) {
		if committed != nil {
			// A fresh clone: signing with a new key would make everything
			// fail to verify against the committed one. Plan refuses
			// the same (see Signing).
			return nil, "", nil, fmt.Errorf("%s (or remove %s for zen to make a new pair)", p.missingKey(st), relTo(p.ws.Root, pubPath))
		}
		// With no password the key is encrypted with the empty one,
		// which protects nothing that the file's mode does not, but is
		// the format the cosign CLI reads.
		var pub []byte
		if len(password) == 0 {
			key, pub, err = signature.GenerateOpenKeyPair()
		} else {
			key, pub, err = signature.GenerateKeyPair(password)
		}
		if err != nil {
			return nil, "", nil, err
		}
		if err := writePrivateKey(p.ws, priv, key); errors.Is(err, fs.ErrExist) {
			// Of two first applies at once, one makes the pair and
			// the other signs with it.
			return p.repositorySigner(st, password)
		} else if err != nil {
			return nil, "", nil, err
		}
		if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
			return nil, "", nil, err
		}
		committed = pub
		fmt.Fprintf(p.opts.Log, "zen: made the repository's signing key pair: %s (private, ignored by git) and %s (commit it)\n", relTo(p.ws.Root, priv), relTo(p.ws.Root, pubPath))
	} else if err != nil {
		return nil, "", nil, err
	}
	sg, err := signature.LoadSigner(key, password)
	if errors.Is(err, signature.ErrWrongPassword) && len(password) > 0 {
		// The password may be meant for another stack's key; the key
		// zen made without one is read with the empty password.
		sg, err = signature.LoadSigner(key, nil)
	}
	if err != nil {
		return nil, "", nil, fmt.Errorf("%s: %w", relTo(p.ws.Root, priv), err)
	}
	if signature.IsPlainKey(key) {
		// Made by an older zen: the same key, rewritten in the format
		// the cosign CLI reads. Signing goes on with it if that fails.
		if err := convertKey(priv, key, password); err != nil {
			fmt.Fprintf(p.opts.Log, "zen: %s is a plain PKCS#8 key, which the cosign CLI does not read, and could not be rewritten in cosign's format: %v\n", relTo(p.ws.Root, priv), err)
		} else {
			fmt.Fprintf(p.opts.Log, "zen: rewrote %s in cosign's format (the same key; the cosign CLI reads it now)\n", relTo(p.ws.Root, priv))
		}
	}
	pub, err := sg.Public().PEM()
	if err != nil {
		return nil, "", nil, err
	}
	if committed == nil {
		if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
			return nil, "", nil, err
		}
	} else if v, err := signature.LoadVerifier(committed); err != nil || !v.Equal(sg.Public()) {
		return nil, "", nil, fmt.Errorf("%w: restore the matching key, or remove %s for zen to write it anew", errKeyMismatch, relTo(p.ws.Root, pubPath))
	}
	return sg, KeyID(pub), sg.Public(), nil
}

// convertKey rewrites the plain PKCS#8 key at path in cosign's format,
// whole or not at all.
func convertKey(path string, key, password []byte) error {
	converted, err := signature.ConvertPlainKey(key, password)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".cosign.key.tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(converted)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// writePrivateKey writes a private key readable by its owner only, never
// over an existing file (fs.ErrExist), under zen's folder, which it makes
// sure git ignores even in a repository whose .gitignore does not say so:
// `git add -A` must never pick a private key up.
func writePrivateKey(ws *workspace.Workspace, path string, key []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := ignoreDataDir(ws); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(key)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// ignoreDataDir writes .zen/.gitignore ignoring everything in .zen, itself
// included, unless it is there: git then ignores zen's folder whatever the
// repository's own .gitignore says.
func ignoreDataDir(ws *workspace.Workspace) error {
	p := filepath.Join(ws.Root, workspace.DataDir, ".gitignore")
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte("# zen's local files: never committed.\n*\n"), 0o644)
}

// gitIgnores reports whether git ignores path, inside the work tree of
// ws: whether `git add -A` would leave it out. It reads the same files git
// does (.gitignore at every level, .git/info/exclude, core.excludesFile).
func gitIgnores(ws *workspace.Workspace, path string) (bool, error) {
	rel, err := filepath.Rel(ws.Root, path)
	if err != nil || !filepath.IsLocal(rel) {
		return true, nil // outside the work tree: git never adds it
	}
	wt, err := ws.Repo.Worktree()
	if err != nil {
		return false, err
	}
	ps, err := gitignore.ReadPatterns(wt.Filesystem, nil)
	if err != nil {
		return false, err
	}
	if global, err := gitignore.LoadGlobalPatterns(osfs.New("/")); err == nil {
		ps = append(global, ps...)
	}
	return gitignore.NewMatcher(ps).Match(strings.Split(filepath.ToSlash(rel), "/"), false), nil
}

// GenerateKeys writes an ECDSA P-256 key pair in cosign's formats, the
// private key encrypted with password. dir is where zen runs: in a git
// work tree, without a prefix, it is the repository's key pair
// (KeyFiles); with one, PREFIX.key and PREFIX.pub (relative to dir),
// refused inside the work tree where git does not ignore them; outside a
// work tree, cosign.key and cosign.pub in dir. It returns the files'
// paths as messages name them: relative to the work tree's top inside
// it, else as given.
func GenerateKeys(dir, prefix string, password []byte) (private, public string, err error) {
	ws, err := workspace.Open(dir)
	if err != nil && !errors.Is(err, workspace.ErrNotRepository) {
		return "", "", err
	}
	var priv, pub string
	switch {
	case prefix != "":
		priv, pub = prefix+".key", prefix+".pub"
	case ws != nil:
		priv, pub = keyFiles(ws)
	default:
		priv, pub = "cosign.key", "cosign.pub"
	}
	// Named as given in messages, found relative to dir.
	at := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	for _, p := range []string{priv, pub} {
		if _, err := os.Stat(at(p)); err == nil {
			return "", "", fmt.Errorf("%s exists: choose another --prefix", p)
		}
	}
	if ws != nil && prefix != "" {
		abs, err := filepath.Abs(at(priv))
		if err != nil {
			return "", "", err
		}
		ignored, err := gitIgnores(ws, abs)
		if err != nil {
			return "", "", err
		}
		if !ignored {
			return "", "", fmt.Errorf("%s would be in the work tree and not ignored by git, so git add -A would commit the private key: write it outside the repository, or into an ignored path (add it to .gitignore), or leave out --prefix to make the repository's key pair in .zen/keys", priv)
		}
	}
	k, pk, err := signature.GenerateKeyPair(password)
	if err != nil {
		return "", "", err
	}
	if ws != nil && prefix == "" {
		err = writePrivateKey(ws, priv, k)
	} else if err = os.MkdirAll(filepath.Dir(at(priv)), 0o700); err == nil {
		// --prefix ~/keys/team makes ~/keys, as the README has it.
		err = os.WriteFile(at(priv), k, 0o600)
	}
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(at(pub), pk, 0o644); err != nil {
		return "", "", err
	}
	name := func(p string) string {
		if ws != nil {
			if abs, err := filepath.Abs(at(p)); err == nil {
				return relTo(ws.Root, abs)
			}
		}
		return p
	}
	return name(priv), name(pub), nil
}

// relTo names p relative to root when it is inside it.
func relTo(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil && filepath.IsLocal(r) {
		return r
	}
	return p
}

// verifiedFile remembers the signature manifests that verified, so that a
// plan checks each cached artifact's signature once (see package trust).
func verifiedFile(ws *workspace.Workspace) string {
	return filepath.Join(ws.Root, workspace.DataDir, "cache", "verified")
}

// PublicKey returns the key a stack's artifacts are verified against, and
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
func (p *Project) PublicKey(st *schema.Stack) (v *signature.Verifier, id, warning string, err error) {
	switch SignerFlavor(st) {
	case SignerNone:
		return nil, "", "", nil
	case "":
		priv, pub := keyFiles(p.ws)
		if _, err := os.Stat(pub); err == nil {
			v, id, err := LoadPublicKey(pub)
			return v, id, "", err
		}
		if _, err := os.Stat(priv); err == nil {
			_, id, v, err := p.signer(st)
			return v, id, "", err
		}
		return nil, "", "", nil // no key yet: nothing was signed
	}
	if path, _ := st.Signer["public_key"].(string); path != "" {
		if !filepath.IsAbs(path) {
			path = filepath.Join(p.ws.Root, filepath.FromSlash(path))
		}
		v, id, err := LoadPublicKey(path)
		return v, id, "", err
	}
	_, id, v, err = p.signer(st)
	if err != nil {
		return nil, "", fmt.Sprintf("signatures of cached artifacts not checked: %v (declare signer.public_key to check them without the private key)", err), nil
	}
	return v, id, "", nil
}

// LoadPublicKey reads a PEM public key file, and gives its key id.
func LoadPublicKey(path string) (*signature.Verifier, string, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("public key: %w", err)
	}
	v, err := signature.LoadVerifier(pem)
	if err != nil {
		return nil, "", fmt.Errorf("public key %s: %w", path, err)
	}
	return v, KeyID(pem), nil
}

// Checker verifies the artifacts of store against v (whose key id is
// id), with the run records of recs, remembering in the clone what
// verified; nil without a key.
func (p *Project) Checker(store registry.Store, v *signature.Verifier, id string, recs state.Records) *trust.Checker {
	if v == nil {
		return nil
	}
	return trust.New(store.ArtifactRepository(), v, id, verifiedFile(p.ws), recs)
}

// checkPublicKey makes sure a declared signer.public_key is the public half
// of the key apply signs with: else everything apply signs would fail to
// verify in the next plan.
func (p *Project) checkPublicKey(st *schema.Stack, signer *signature.Verifier) error {
	if st.Signer == nil {
		return nil
	}
	path, _ := st.Signer["public_key"].(string)
	if path == "" {
		return nil
	}
	v, _, _, err := p.PublicKey(st)
	if err != nil {
		return fmt.Errorf("stack %s: signer: %w", st.Name, err)
	}
	if !v.Equal(signer) {
		return fmt.Errorf("stack %s: signer: public_key %s is not the public key of the signing key", st.Name, path)
	}
	return nil
}
