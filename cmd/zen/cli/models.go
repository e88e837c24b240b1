package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/apply"
	"github.com/zen-dev/zen/internal/workspace"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// Exit codes of zen verify, one per way a model can fail to verify.
const (
	exitUnsigned     = 10 // no signature
	exitBadSignature = 11 // a signature or attestation does not verify
	exitOtherKey     = 12 // signed, but not by this key
	exitDigest       = 13 // the registry's digest differs from the record
	exitContent      = 14 // stored content does not match its digest
	exitMissing      = 15 // not in the store at all
	exitProvenance   = 16 // the attestation names another run, commit, entry point or inputs
)

// keyFiles is where zen keeps the key pair it makes for a repository's
// local stack: the private key under .zen (never committed, never stored),
// the public key at the root, for the user to commit.
func keyFiles(ws *workspace.Workspace) (private, public string) {
	return filepath.Join(ws.Root, workspace.DataDir, "keys", "cosign.key"), filepath.Join(ws.Root, "cosign.pub")
}

// keyID names a public key in records: sha256 of its PEM.
func keyID(pub []byte) string {
	s := sha256.Sum256(pub)
	return "sha256:" + hex.EncodeToString(s[:])
}

// signer returns the stack's signer, its key id, and the verifier stage
// moves check against. A stack with a signer: {key: {secret: NAME}} uses
// that cosign key (PEM, or a path to one; password from COSIGN_PASSWORD).
// The local stack (an oci-layout store, no signer declared) uses a key
// pair zen makes on first use. Other stacks sign nothing.
func (s *session) signer(st *schema.Stack) (*signature.Signer, string, *signature.Verifier, error) {
	if s.signed == nil {
		s.signed = &signed{}
		s.signed.s, s.signed.id, s.signed.v, s.signed.err = s.loadSigner(st)
	}
	return s.signed.s, s.signed.id, s.signed.v, s.signed.err
}

// checkedSigner is signer, with a declared signer.public_key checked
// against the private key's public half.
func (s *session) checkedSigner(st *schema.Stack) (*signature.Signer, string, *signature.Verifier, error) {
	signer, keyID, verifier, err := s.signer(st)
	if err == nil && signer != nil {
		err = s.checkPublicKey(st, verifier)
	}
	return signer, keyID, verifier, err
}

// signed is a session's signer, loaded once: decrypting a key is slow.
type signed struct {
	s   *signature.Signer
	id  string
	v   *signature.Verifier
	err error
}

func (s *session) loadSigner(st *schema.Stack) (*signature.Signer, string, *signature.Verifier, error) {
	password := []byte(os.Getenv("COSIGN_PASSWORD"))
	if st.Signer != nil {
		if flavor, _ := st.Signer["flavor"].(string); flavor != "cosign" {
			return nil, "", nil, fmt.Errorf("stack %s: unknown signer flavor %q (known: cosign)", st.Name, flavor)
		}
		ref, _ := st.Signer["key"].(map[string]any)
		name, _ := ref["secret"].(string)
		if name == "" {
			return nil, "", nil, fmt.Errorf("stack %s: signer needs key: {secret: NAME}", st.Name)
		}
		val, err := apply.LookupSecret(name)
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
		return sg, keyID(pub), v, nil
	}
	if st.ArtifactStore.Flavor != "oci-layout" {
		return nil, "", nil, nil
	}
	priv, pubPath := keyFiles(s.ws)
	committed, err := os.ReadFile(pubPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", nil, err
	}
	key, err := os.ReadFile(priv)
	if errors.Is(err, os.ErrNotExist) {
		if committed != nil {
			// A fresh clone: signing with a new key would make everything
			// fail to verify against the committed one.
			return nil, "", nil, fmt.Errorf("%s exists but its private key %s does not: copy the key here, or remove %s for zen to make a new pair",
				relTo(s.ws.Root, pubPath), relTo(s.ws.Root, priv), relTo(s.ws.Root, pubPath))
		}
		// With no password, cosign's encryption would protect nothing and
		// cost every apply a third of a second: the key is kept plain,
		// readable by its owner only, as ssh keeps one.
		var pub []byte
		if len(password) == 0 {
			key, pub, err = signature.GeneratePlainKeyPair()
		} else {
			key, pub, err = signature.GenerateKeyPair(password)
		}
		if err != nil {
			return nil, "", nil, err
		}
		if err := os.MkdirAll(filepath.Dir(priv), 0o700); err != nil {
			return nil, "", nil, err
		}
		// O_EXCL: of two first applies at once, one makes the pair and
		// the other signs with it.
		f, err := os.OpenFile(priv, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return s.loadSigner(st)
		}
		if err != nil {
			return nil, "", nil, err
		}
		_, err = f.Write(key)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(priv)
			return nil, "", nil, err
		}
		if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
			return nil, "", nil, err
		}
		committed = pub
		fmt.Fprintf(os.Stderr, "zen: made the local stack's signing key pair: %s (private, ignored by git) and %s (commit it)\n", relTo(s.ws.Root, priv), relTo(s.ws.Root, pubPath))
	} else if err != nil {
		return nil, "", nil, err
	}
	sg, err := signature.LoadSigner(key, password)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%s: %w", relTo(s.ws.Root, priv), err)
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
		return nil, "", nil, fmt.Errorf("%w: restore the matching key, or remove %s for zen to write it anew", errKeyMismatch, relTo(s.ws.Root, pubPath))
	}
	return sg, keyID(pub), sg.Public(), nil
}

func newKeys(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Make signing keys",
	}
	var prefix string
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Write a cosign-compatible key pair: PREFIX.key (encrypted) and PREFIX.pub",
		Long: `Generate writes an ECDSA P-256 key pair in cosign's formats: the private
key encrypted with $COSIGN_PASSWORD (empty when unset), and the public key.
The cosign CLI reads both. Keep the private key out of git: hand it to zen
as a secret (signer: {flavor: "cosign", key: {secret: "cosign_key"}}).`,
		Example: "  COSIGN_PASSWORD=... zen keys generate\n  zen keys generate --prefix release",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			priv, pub := prefix+".key", prefix+".pub"
			for _, p := range []string{priv, pub} {
				if _, err := os.Stat(p); err == nil {
					return fmt.Errorf("%s exists: choose another --prefix", p)
				}
			}
			k, p, err := signature.GenerateKeyPair([]byte(os.Getenv("COSIGN_PASSWORD")))
			if err != nil {
				return err
			}
			if err := os.WriteFile(priv, k, 0o600); err != nil {
				return err
			}
			if err := os.WriteFile(pub, p, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "wrote %s (private, encrypted) and %s\n", priv, pub)
			return nil
		},
	}
	gen.Flags().StringVar(&prefix, "prefix", "cosign", "write `PREFIX`.key and PREFIX.pub")
	cmd.AddCommand(gen)
	return cmd
}

// modelRef is MODEL, MODEL:VERSION or MODEL@STAGE.
type modelRef struct{ model, version, stage string }

func parseModelRef(s string) modelRef {
	if m, st, ok := strings.Cut(s, "@"); ok {
		return modelRef{model: m, stage: st}
	}
	if m, v, ok := strings.Cut(s, ":"); ok {
		return modelRef{model: m, version: v}
	}
	return modelRef{model: s}
}

// resolveVersion finds the recorded version a reference names; a bare
// model names its newest recorded version.
func resolveVersion(recs state.Records, ref modelRef) (*state.ModelVersion, error) {
	v := ref.version
	if ref.stage != "" {
		st, _, err := recs.Stages(ref.model)
		if err != nil {
			return nil, err
		}
		if st == nil || st.Stages[ref.stage] == nil {
			return nil, fmt.Errorf("model %s has no version in stage %s", ref.model, ref.stage)
		}
		v = st.Stages[ref.stage].ModelVersion
	}
	if v == "" {
		vs, err := recs.ModelVersions(ref.model)
		if err != nil {
			return nil, err
		}
		if len(vs) == 0 {
			return nil, fmt.Errorf("model %s has no recorded version", ref.model)
		}
		var newest *state.ModelVersion
		for _, name := range vs {
			mv, _, err := recs.ModelVersion(ref.model, name)
			if err != nil {
				return nil, err
			}
			if newest == nil || mv.Created.After(newest.Created) {
				newest = mv
			}
		}
		return newest, nil
	}
	mv, ok, err := recs.ModelVersion(ref.model, v)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("model %s has no recorded version %s", ref.model, v)
	}
	return mv, nil
}

func newModels(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List and show model versions and stages",
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List recorded model versions and the stages they hold",
		Example: "  zen models list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, recs, err := openRecords(true)
			if err != nil {
				return err
			}
			type row struct {
				*state.ModelVersion
				Stages []string `json:"stages"`
			}
			var rows []row
			for _, name := range slices.Sorted(maps.Keys(sess.cfg.Models)) {
				st, _, err := recs.Stages(name)
				if err != nil {
					return err
				}
				vs, err := recs.ModelVersions(name)
				if err != nil {
					return err
				}
				for _, v := range vs {
					mv, _, err := recs.ModelVersion(name, v)
					if err != nil {
						return err
					}
					r := row{ModelVersion: mv, Stages: []string{}}
					if st != nil {
						for _, s := range slices.Sorted(maps.Keys(st.Stages)) {
							if st.Stages[s].ModelVersion == v {
								r.Stages = append(r.Stages, s)
							}
						}
					}
					rows = append(rows, r)
				}
			}
			if g.output == "json" {
				if rows == nil {
					rows = []row{}
				}
				return writeJSON(g.stdout, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(g.stderr, "no model versions recorded yet: declare one in models: and zen apply")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MODEL\tVERSION\tSTAGES\tDIGEST\tRUN\tSIGNED")
			for _, r := range rows {
				signed := "no"
				if r.SignedBy != "" {
					signed = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Model, r.ModelVersion.ModelVersion, strings.Join(r.Stages, ","), short(strings.TrimPrefix(r.Digest, "sha256:")), r.RunID, signed)
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:     "show MODEL[:VERSION|@STAGE]",
		Short:   "Show a model version: digest, stages, run, metrics, signature",
		Example: "  zen models show fraud-detector@production\n  zen models show fraud-detector:1.0.0 --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, recs, err := openRecords(false)
			if err != nil {
				return err
			}
			mv, err := resolveVersion(recs, parseModelRef(args[0]))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, mv)
			}
			w := g.stdout
			fmt.Fprintf(w, "model %s %s\n", mv.Model, mv.ModelVersion)
			fmt.Fprintf(w, "  digest:     %s\n", mv.Digest)
			fmt.Fprintf(w, "  repository: %s\n", mv.Repository)
			if st, _, _ := recs.Stages(mv.Model); st != nil {
				var in []string
				for _, s := range slices.Sorted(maps.Keys(st.Stages)) {
					if st.Stages[s].ModelVersion == mv.ModelVersion {
						in = append(in, s)
					}
				}
				if len(in) > 0 {
					fmt.Fprintf(w, "  stages:     %s\n", strings.Join(in, ", "))
				}
			}
			fmt.Fprintf(w, "  produced:   %s.%s.%s in run %s, source %s, %s\n", mv.Pipeline, mv.Step, mv.Output, mv.RunID, mv.SourceCommit, mv.Created.Local().Format(time.DateTime))
			signed := "unsigned"
			if mv.SignedBy != "" {
				signed = "signed by key " + mv.SignedBy
			}
			fmt.Fprintf(w, "  signature:  %s\n", signed)
			for _, k := range slices.Sorted(maps.Keys(mv.Metrics)) {
				fmt.Fprintf(w, "  metric %s = %g\n", k, mv.Metrics[k])
			}
			return nil
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}
