package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/registry/verify"
	"github.com/zen-dev/zen/view"
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

// verifyFlags are shared by zen verify and zen verify run.
type verifyFlags struct {
	key   string
	stack string
}

// options are the library's verify options from the flags.
func (f *verifyFlags) options(g *globals) zen.VerifyOptions {
	o := zen.VerifyOptions{Stack: f.stack}
	if f.key != "" {
		o.Key, o.KeyName = g.path(f.key), f.key
	}
	return o
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
			sess, err := openRead(cmd, g, true)
			if err != nil {
				return err
			}
			res, err := sess.VerifyModel(cmd.Context(), zen.ParseModelRef(args[0]), f.options(g))
			if err != nil {
				return verifyError(err)
			}
			mv := res.Version
			if g.output == "json" {
				out := map[string]any{"verified": true, "model": mv.Model, "version": mv.ModelVersion, "digest": mv.Digest, "key": res.KeyID, "run": mv.RunID, "source_commit": mv.SourceCommit}
				if mv.RunCommit != "" || mv.RunDirty != "" {
					out["run_source_commit"] = mv.RunCommit
					if mv.RunDirty != "" {
						out["run_dirty_digest"] = mv.RunDirty
					}
				}
				return writeJSON(g.stdout, out)
			}
			return view.VerifiedModel(g.stdout, res)
		},
	}
	cmd.PersistentFlags().StringVar(&f.key, "key", "", "the public key (default: the stack's; cosign.pub for the local stack)")
	cmd.PersistentFlags().StringVar(&f.stack, "stack", "", "read from this stack's artifact store (default: the stack the version or run was recorded in)")
	cmd.AddCommand(newVerifyRun(g, &f))
	return cmd
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
			sess, err := openRead(cmd, g, true)
			if err != nil {
				return err
			}
			res, err := sess.VerifyRun(cmd.Context(), args[0], f.options(g))
			if err != nil {
				return err
			}
			run, checks := res.Run, res.Artifacts
			if g.output == "json" {
				if err := writeJSON(g.stdout, map[string]any{"run": run.ID, "verified": res.Failed() == 0, "artifacts": checks}); err != nil {
					return err
				}
			} else {
				if err := view.ArtifactChecks(g.stdout, res); err != nil {
					return err
				}
			}
			if err := res.Err(); err != nil {
				return verifyError(err)
			}
			if g.output == "text" {
				return view.VerifiedRun(g.stdout, res)
			}
			return nil
		},
	}
}

// verifyError gives a verification failure (a *zen.VerifyError) its
// exit code; other errors are zen verify's exit 1.
func verifyError(err error) error {
	var ve *zen.VerifyError
	if !errors.As(err, &ve) {
		return err
	}
	return &codeError{code: verifyCode(ve.Kind), err: err}
}

// verifyCode is zen verify's exit code for a verification failure.
func verifyCode(kind verify.Kind) int {
	switch kind {
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
