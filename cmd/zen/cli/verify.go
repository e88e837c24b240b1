package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/apply"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// verifyFlags are shared by zen verify and zen verify run.
type verifyFlags struct {
	key   string
	stack string
}

// verifyKey returns the key to verify with: --key, else the stack's public
// key (see publicKey), and how to name it.
func (f *verifyFlags) verifyKey(sess *session, st *schema.Stack) (*signature.Verifier, string, error) {
	if f.key != "" {
		v, _, _, err := loadPublicKey(f.key)
		return v, f.key, err
	}
	v, id, warning, err := sess.publicKey(st)
	switch {
	case err != nil:
		return nil, "", err
	case v == nil && warning != "":
		return nil, "", fmt.Errorf("stack %s: no public key to verify with: declare signer.public_key, or use --key", st.Name)
	case v == nil && signerFlavor(st) == signerNone:
		return nil, "", fmt.Errorf("stack %s signs nothing (signer: flavor: \"none\"): use --key", st.Name)
	case v == nil:
		_, pub := keyFiles(sess.ws)
		return nil, "", fmt.Errorf("stack %s signs with the repository's key pair, and %s does not exist: nothing was signed yet; use --key", st.Name, relTo(sess.ws.Root, pub))
	}
	return v, "key " + id, nil
}

// open selects the stack, the key to verify with and the stack's store.
func (f *verifyFlags) open(sess *session, stack string) (*signature.Verifier, string, registry.Store, error) {
	st, err := sess.selectStack(stack)
	if err != nil {
		return nil, "", nil, err
	}
	v, keyName, err := f.verifyKey(sess, st)
	if err != nil {
		return nil, "", nil, err
	}
	store, err := sess.openStore(st)
	if err != nil {
		return nil, "", nil, err
	}
	return v, keyName, store, nil
}

func newVerify(g *globals) *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify MODEL[:VERSION|@STAGE]",
		Short: "Check signatures, attestations and digests against the record",
		Long: `Verify checks, for the recorded model version a reference names:

  - that the store's tag still points at the recorded digest  (exit 13)
  - that it is signed                                           (exit 10)
  - that a signature by the key verifies                        (exit 11)
  - that the signature is by this key, not another one          (exit 12)
  - that its provenance attestation verifies and names it       (exit 11)
  - that every stored blob still matches its digest             (exit 14)

zen verify run RUN checks the same of every artifact a run recorded.

The key is --key, else the stack's public key: its signer's public_key,
or cosign.pub at the repository's root for the local stack. Exit 0 when
everything holds, 1 on any other error.`,
		Example: "  zen verify fraud-detector@production\n  zen verify fraud-detector:1.0.0 --key release.pub\n  zen verify run latest",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, recs, err := openRecords(true)
			if err != nil {
				return err
			}
			ref := parseModelRef(args[0])
			mv, err := resolveVersion(recs, ref)
			if err != nil {
				return err
			}
			v, keyName, store, err := f.open(sess, f.stack)
			if err != nil {
				return err
			}
			ms, ok := store.(registry.ModelStore)
			if !ok {
				return fmt.Errorf("artifact store %s holds no models", store)
			}
			ctx := cmd.Context()
			tag := mv.ModelVersion
			if ref.stage != "" {
				tag = ref.stage
			}
			got, err := ms.Resolve(ctx, mv.Model, tag)
			if err != nil {
				return err
			}
			if got != mv.Digest {
				return &codeError{code: exitDigest, err: fmt.Errorf("model %s %s: the store's %s:%s is %s, the record says %s: tampered, or the tag moved outside zen", mv.Model, mv.ModelVersion, mv.Model, tag, got, mv.Digest)}
			}
			repo := apply.SignatureRepository(ms.ModelRepository(mv.Model))
			if err := signature.Verify(ctx, repo, mv.Digest, v); err != nil {
				return &codeError{code: verifyCode(err), err: fmt.Errorf("model %s %s (%s): %w", mv.Model, mv.ModelVersion, mv.Digest, err)}
			}
			if _, err := signature.VerifyAttestation(ctx, repo, mv.Digest, apply.ProvenanceType, v); err != nil {
				return &codeError{code: verifyCode(err), err: fmt.Errorf("model %s %s (%s): provenance: %w", mv.Model, mv.ModelVersion, mv.Digest, err)}
			}
			// The signature covers the manifest; pulling checks that every
			// blob still matches the digest the manifest names.
			tmp, err := os.MkdirTemp("", "zen-verify-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			if err := ms.PullModel(ctx, mv.Digest, mv.Model, filepath.Join(tmp, "model")); err != nil {
				if errors.Is(err, registry.ErrDigestMismatch) {
					return &codeError{code: exitContent, err: fmt.Errorf("model %s %s: stored content was altered: %w", mv.Model, mv.ModelVersion, err)}
				}
				return err
			}
			if g.output == "json" {
				pem, _ := v.PEM()
				return writeJSON(g.stdout, map[string]any{"verified": true, "model": mv.Model, "version": mv.ModelVersion, "digest": mv.Digest, "key": keyID(pem)})
			}
			fmt.Fprintf(g.stdout, "verified model %s %s %s: signature and provenance by %s\n", mv.Model, mv.ModelVersion, mv.Digest, keyName)
			return nil
		},
	}
	cmd.PersistentFlags().StringVar(&f.key, "key", "", "the public key (default: the stack's; cosign.pub for the local stack)")
	cmd.PersistentFlags().StringVar(&f.stack, "stack", "", "read from this stack's artifact store (zen verify run: default the run's stack)")
	cmd.AddCommand(newVerifyRun(g, &f))
	return cmd
}

// artifactCheck is what zen verify run found of one artifact.
type artifactCheck struct {
	Step     string `json:"step"`
	Artifact string `json:"artifact"` // an output's name, or "log"
	Digest   string `json:"digest"`
	// Run is the run that made the artifact: the run itself, or for a
	// cached step the run it was reused from.
	Run string `json:"run"`
	// SameAs names, when the provenance attestation is another step's or
	// run's that stored the same bytes first, that step and run.
	SameAs string `json:"same_as,omitempty"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	code   int
}

func newVerifyRun(g *globals, f *verifyFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "run RUN",
		Short: "Check the signature, provenance and content of every artifact of a run",
		Long: `Verify run checks every artifact a run recorded, each step's outputs and
logs: that it is signed by the key (exit 10, 11, 12 as for a model), that
a provenance attestation by the key names the run and the step that made
it (for a cached step, the run it was reused from) or, for bytes that
another step or run stored first, names that one (exit 11 when none
does), and that its stored content still matches its digest (exit 14).

RUN is a run id, a unique prefix of one, or "latest". The store is the
run's stack's unless --stack says otherwise. Every artifact is checked and
reported; the exit code is the first failure's.`,
		Example: "  zen verify run latest\n  zen verify run 20261123-101500 --key release.pub --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := open(true)
			if err != nil {
				return err
			}
			run, err := findRun(sess, args[0])
			if err != nil {
				return err
			}
			stack := f.stack
			if stack == "" {
				stack = run.Stack
			}
			v, keyName, store, err := f.open(sess, stack)
			if err != nil {
				return err
			}
			checks := verifyRun(cmd.Context(), store, run, v)
			failed := 0
			code := 0
			for _, c := range checks {
				if !c.OK {
					failed++
					if code == 0 {
						code = c.code
					}
				}
			}
			if g.output == "json" {
				if err := writeJSON(g.stdout, map[string]any{"run": run.ID, "verified": failed == 0, "artifacts": checks}); err != nil {
					return err
				}
			} else {
				for _, c := range checks {
					mark := "✓"
					if !c.OK {
						mark = "✗"
					}
					fmt.Fprintf(g.stdout, "%s %s.%s %s", mark, c.Step, c.Artifact, c.Digest)
					if c.Run != run.ID {
						fmt.Fprintf(g.stdout, " (from run %s)", c.Run)
					}
					if c.SameAs != "" {
						fmt.Fprintf(g.stdout, " (same bytes as %s)", c.SameAs)
					}
					fmt.Fprintln(g.stdout)
					if !c.OK {
						fmt.Fprintf(g.stdout, "    %s\n", c.Error)
					}
				}
			}
			if failed > 0 {
				return &codeError{code: code, err: fmt.Errorf("run %s: %d of %d artifacts do not verify", run.ID, failed, len(checks))}
			}
			if g.output == "text" {
				fmt.Fprintf(g.stdout, "verified run %s of %s: %d artifacts, signature and provenance by %s\n", run.ID, run.Pipeline, len(checks), keyName)
			}
			return nil
		},
	}
}

// verifyRun checks every artifact of run, steps in the run's order.
func verifyRun(ctx context.Context, store registry.Store, run *state.Run, v *signature.Verifier) []*artifactCheck {
	repo := apply.SignatureRepository(store.ArtifactRepository())
	order := run.Order
	if len(order) == 0 {
		order = slices.Sorted(maps.Keys(run.Steps))
	}
	var checks []*artifactCheck
	for _, step := range order {
		res := run.Steps[step]
		if res == nil {
			continue
		}
		from := run.ID
		if res.CachedFrom != "" {
			from = res.CachedFrom
		}
		for _, name := range slices.Sorted(maps.Keys(res.Outputs)) {
			checks = append(checks, &artifactCheck{Step: step, Artifact: name, Digest: res.Outputs[name].Digest, Run: from})
		}
		if res.Log != nil {
			checks = append(checks, &artifactCheck{Step: step, Artifact: "log", Digest: res.Log.Digest, Run: from})
		}
	}
	for _, c := range checks {
		c.code, c.Error = verifyArtifact(ctx, store, repo, run.Pipeline, c, v)
		c.OK = c.code == 0
	}
	return checks
}

// verifyArtifact checks one artifact, returning an exit code and what is
// wrong, or 0.
func verifyArtifact(ctx context.Context, store registry.Store, repo signature.Repository, pipeline string, c *artifactCheck, v *signature.Verifier) (int, string) {
	if err := signature.Verify(ctx, repo, c.Digest, v); err != nil {
		return verifyCode(err), err.Error()
	}
	preds, err := signature.VerifyAttestations(ctx, repo, c.Digest, apply.ProvenanceType, v)
	if err != nil {
		return verifyCode(err), "provenance: " + err.Error()
	}
	// The same bytes are attested once, by the first run that stored
	// them: the attestation names this step in this run, or another step
	// or run that made exactly these bytes.
	entry := pipeline + "." + c.Step + "." + c.Artifact
	var first string
	found := false
	for _, raw := range preds {
		var p struct {
			Invocation struct {
				ConfigSource struct {
					EntryPoint string `json:"entryPoint"`
				} `json:"configSource"`
			} `json:"invocation"`
			Metadata struct {
				BuildInvocationID string `json:"buildInvocationId"`
			} `json:"metadata"`
		}
		if json.Unmarshal(raw, &p) != nil || p.Metadata.BuildInvocationID == "" || p.Invocation.ConfigSource.EntryPoint == "" {
			continue
		}
		if p.Metadata.BuildInvocationID == c.Run && p.Invocation.ConfigSource.EntryPoint == entry {
			found = true
			break
		}
		if first == "" {
			first = p.Invocation.ConfigSource.EntryPoint + " in run " + p.Metadata.BuildInvocationID
		}
	}
	switch {
	case found:
	case first != "":
		c.SameAs = first
	default:
		return exitBadSignature, "provenance: no attestation by the key names the step and run that made it"
	}
	tmp, err := os.MkdirTemp("", "zen-verify-")
	if err != nil {
		return exitError, err.Error()
	}
	defer os.RemoveAll(tmp)
	if err := store.Pull(ctx, c.Digest, filepath.Join(tmp, "a")); err != nil {
		if errors.Is(err, registry.ErrDigestMismatch) {
			return exitContent, "stored content was altered: " + err.Error()
		}
		return exitError, err.Error()
	}
	return 0, ""
}

func verifyCode(err error) int {
	switch {
	case errors.Is(err, signature.ErrUnsigned):
		return exitUnsigned
	case errors.Is(err, signature.ErrOtherKey):
		return exitOtherKey
	case errors.Is(err, signature.ErrBadSignature):
		return exitBadSignature
	}
	return exitError
}
