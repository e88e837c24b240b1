package cli

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/registry/verify"
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
		v, _, _, err := loadPublicKey(sess.g.path(f.key))
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
		_, pub := sess.KeyFiles()
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
		Long: `Verify checks, for the recorded model version a reference names, in the
store of the stack it was recorded in:

  - that it is in the store at all                              (exit 15)
  - that the store's tag still points at the recorded digest  (exit 13)
  - that it is signed                                           (exit 10)
  - that a signature by the key verifies                        (exit 11)
  - that the signature is by this key, not another one          (exit 12)
  - that its provenance attestation by the key verifies         (exit 10, 11, 12)
  - that the attestation names what the record says: the run
    that made the output and the commit it ran from, the commit
    that declares the version, the entry point
    (pipeline.step.output) and the producing step's input
    digests; and that the version's record and the run's agree
    on the commit the run ran from                              (exit 16)
  - that every stored blob still matches its digest             (exit 14)

zen verify run RUN checks the same of every artifact a run recorded.

The store is the one of the stack the version's record names, unless
--stack says otherwise. The key is --key, else that stack's public key:
its signer's public_key, or cosign.pub at the repository's root. Exit 0
when everything holds, 1 on any other error.`,
		Example: "  zen verify fraud-detector@production\n  zen verify fraud-detector:1.0.0 --key release.pub\n  zen verify run latest",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, recs, err := openRecords(cmd, g, true)
			if err != nil {
				return err
			}
			ref := parseModelRef(args[0])
			mv, err := resolveVersion(recs, ref)
			if err != nil {
				return err
			}
			stack, err := f.versionStack(sess, mv)
			if err != nil {
				return err
			}
			v, keyName, store, err := f.open(sess, stack)
			if err != nil {
				return err
			}
			ms, ok := store.(registry.ModelStore)
			if !ok {
				return fmt.Errorf("artifact store %s holds no models", store)
			}
			tag := mv.ModelVersion
			if ref.stage != "" {
				tag = ref.stage
			}
			want, err := verify.ModelBuild(recs, mv)
			if err == nil {
				err = (&verify.Verifier{Key: v}).Model(cmd.Context(), ms, mv.Model, tag, mv.Digest, want, true)
			}
			if err != nil {
				return &codeError{code: verifyCode(err), err: fmt.Errorf("model %s %s (%s): %w", mv.Model, mv.ModelVersion, mv.Digest, err)}
			}
			if g.output == "json" {
				pem, _ := v.PEM()
				out := map[string]any{"verified": true, "model": mv.Model, "version": mv.ModelVersion, "digest": mv.Digest, "key": keyID(pem), "run": mv.RunID, "source_commit": mv.SourceCommit}
				if mv.RunCommit != "" || mv.RunDirty != "" {
					out["run_source_commit"] = mv.RunCommit
					if mv.RunDirty != "" {
						out["run_dirty_digest"] = mv.RunDirty
					}
				}
				return writeJSON(g.stdout, out)
			}
			// What the attestation was checked to name: the run that made
			// the output, the commit it ran from when the record names it,
			// and the commit that declares the version.
			made := fmt.Sprintf("run %s, commit %s", mv.RunID, short(mv.SourceCommit))
			if mv.RunCommit != mv.SourceCommit && mv.RunCommit != "" || mv.RunDirty != "" {
				from := short(cmp.Or(mv.RunCommit, "(none)"))
				if mv.RunDirty != "" {
					from += " with uncommitted changes"
				}
				made = fmt.Sprintf("run %s from commit %s, declared by commit %s", mv.RunID, from, short(mv.SourceCommit))
			}
			fmt.Fprintf(g.stdout, "verified model %s %s %s: signature and provenance (%s) by %s\n", mv.Model, mv.ModelVersion, mv.Digest, made, keyName)
			return nil
		},
	}
	cmd.PersistentFlags().StringVar(&f.key, "key", "", "the public key (default: the stack's; cosign.pub for the local stack)")
	cmd.PersistentFlags().StringVar(&f.stack, "stack", "", "read from this stack's artifact store (default: the stack the version or run was recorded in)")
	cmd.AddCommand(newVerifyRun(g, &f))
	return cmd
}

// versionStack names the stack whose store holds a recorded version:
// --stack, else the stack the record names, else (records made before
// they named it) a declared stack whose store holds the recorded
// repository, else the stack zen would use.
func (f *verifyFlags) versionStack(sess *session, mv *state.ModelVersion) (string, error) {
	if f.stack != "" {
		return f.stack, nil
	}
	all := stacks(sess.cfg)
	if mv.Stack != "" {
		if _, ok := all[mv.Stack]; !ok {
			return "", fmt.Errorf("model %s %s was recorded in stack %s, which is not declared any more: name its store with --stack", mv.Model, mv.ModelVersion, mv.Stack)
		}
		return mv.Stack, nil
	}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		store, err := sess.openStore(all[name])
		if err != nil {
			continue
		}
		ms, ok := store.(registry.ModelStore)
		held := ok && ms.ModelRepository(mv.Model).Reference() == mv.Repository
		store.Close()
		if held {
			return name, nil
		}
	}
	return "", nil
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
logs: that it is in the store (exit 15), signed by the key (exit 10, 11,
12 as for a model), that a provenance attestation by the key names the
run that made it (for a cached step, the run it was reused from), its
source commit, the step's entry point and its input digests (exit 16
when none does), or, for bytes that another step or run stored first,
names that one, whose own record must say it stored these bytes; and
that its stored content still matches its digest (exit 14).

RUN is a run id, a unique prefix of one, or "latest". The store is the
run's stack's unless --stack says otherwise. Every artifact is checked and
reported; the exit code is the first failure's.`,
		Example: "  zen verify run latest\n  zen verify run 20261123-101500 --key release.pub --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, recs, err := openRecords(cmd, g, true)
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
			checks := verifyRun(cmd.Context(), store, recs, run, v)
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
func verifyRun(ctx context.Context, store registry.Store, recs state.Records, run *state.Run, key *signature.Verifier) []*artifactCheck {
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
	v := &verify.Verifier{Key: key, Made: verify.MadeBy(recs)}
	for _, c := range checks {
		want, err := verify.ArtifactBuild(recs, run, c.Step, c.Artifact)
		if err == nil {
			var res verify.Result
			res, err = v.Artifact(ctx, store, c.Digest, want, true)
			c.SameAs = res.SameAs
		}
		if err != nil {
			c.code, c.Error = verifyCode(err), err.Error()
		}
		c.OK = c.code == 0
	}
	return checks
}

// verifyCode is zen verify's exit code for a verification failure.
func verifyCode(err error) int {
	switch verify.KindOf(err) {
	case verify.Missing:
		return exitMissing
	case verify.Unsigned:
		return exitUnsigned
	case verify.OtherKey:
		return exitOtherKey
	case verify.BadSignature:
		return exitBadSignature
	case verify.TagMoved:
		return exitDigest
	case verify.ContentAltered:
		return exitContent
	case verify.ProvenanceMismatch:
		return exitProvenance
	}
	return exitError
}
