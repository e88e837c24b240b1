package zen

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/registry/verify"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// VerifyOptions say what to verify against.
type VerifyOptions struct {
	// Key is a public key file to verify with; "" is the stack's public
	// key (see PublicKey).
	Key string
	// KeyName names Key in the result; "" is Key.
	KeyName string
	// Stack names the stack whose store to read; "" is the stack the
	// version or run was recorded in.
	Stack string
}

// VerifyError is a verification failure: Kind says which check failed
// (0 when the store could not be read, say), as verify.KindOf does.
type VerifyError struct {
	Kind verify.Kind
	Err  error
}

func (e *VerifyError) Error() string { return e.Err.Error() }
func (e *VerifyError) Unwrap() error { return e.Err }

// ModelVerification is a model version that verified.
type ModelVerification struct {
	Version *state.ModelVersion
	// KeyID is the key id of the public key it verified with.
	KeyID string
	// Key names that key: VerifyOptions' name for it, else "key ID".
	Key string
}

// VerifyModel checks, for the recorded model version ref names, in the
// store of the stack it was recorded in: that it is in the store, that
// the store's tag (the stage's, for MODEL@STAGE) still points at the
// recorded digest, that it is signed by the key, that its provenance
// attestation by the key names what the record says, and that every
// stored blob matches its digest. A failure of one of those checks is a
// *VerifyError.
func (p *Project) VerifyModel(ctx context.Context, ref ModelRef, opts VerifyOptions) (*ModelVerification, error) {
	recs, err := p.Records()
	if err != nil {
		return nil, err
	}
	mv, err := resolveVersion(recs, ref)
	if err != nil {
		return nil, err
	}
	stack, err := p.versionStack(opts.Stack, mv)
	if err != nil {
		return nil, err
	}
	v, keyName, store, err := p.openVerify(opts, stack)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	ms, ok := store.(registry.ModelStore)
	if !ok {
		return nil, fmt.Errorf("artifact store %s holds no models", store)
	}
	tag := mv.ModelVersion
	if ref.Stage != "" {
		tag = ref.Stage
	}
	want, err := verify.ModelBuild(recs, mv)
	if err == nil {
		err = (&verify.Verifier{Key: v}).Model(ctx, ms, mv.Model, tag, mv.Digest, want, true)
	}
	if err != nil {
		return nil, &VerifyError{Kind: verify.KindOf(err), Err: fmt.Errorf("model %s %s (%s): %w", mv.Model, mv.ModelVersion, mv.Digest, err)}
	}
	pem, _ := v.PEM()
	return &ModelVerification{Version: mv, KeyID: KeyID(pem), Key: keyName}, nil
}

// ArtifactCheck is what VerifyRun found of one artifact.
type ArtifactCheck struct {
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
	// Kind is the failed check's kind (0 for none, or for a failure that
	// is not a check's).
	Kind verify.Kind `json:"-"`
}

// RunVerification is what VerifyRun found of a run's artifacts.
type RunVerification struct {
	Run       *state.Run
	Artifacts []*ArtifactCheck
	// Key names the key: VerifyOptions' name for it, else "key ID".
	Key string
}

// Failed counts the artifacts that did not verify.
func (rv *RunVerification) Failed() int {
	n := 0
	for _, c := range rv.Artifacts {
		if !c.OK {
			n++
		}
	}
	return n
}

// Err is nil when every artifact verified, else a *VerifyError of the
// first failure's kind.
func (rv *RunVerification) Err() error {
	failed := rv.Failed()
	if failed == 0 {
		return nil
	}
	var kind verify.Kind
	for _, c := range rv.Artifacts {
		if !c.OK {
			kind = c.Kind
			break
		}
	}
	return &VerifyError{Kind: kind, Err: fmt.Errorf("run %s: %d of %d artifacts do not verify", rv.Run.ID, failed, len(rv.Artifacts))}
}

// VerifyRun checks every artifact a run recorded (each step's outputs and
// log, steps in the run's order) in the store of the run's stack: that it
// is in the store, signed by the key, that a provenance attestation by
// the key names the run that made it, and that its stored content
// matches its digest. runID is as Run takes it. Every artifact is
// checked; the result's Err says whether all verified.
func (p *Project) VerifyRun(ctx context.Context, runID string, opts VerifyOptions) (*RunVerification, error) {
	recs, err := p.Records()
	if err != nil {
		return nil, err
	}
	run, err := findRun(recs, runID)
	if err != nil {
		return nil, err
	}
	stack := opts.Stack
	if stack == "" {
		stack = run.Stack
	}
	v, keyName, store, err := p.openVerify(opts, stack)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	return &RunVerification{Run: run, Artifacts: verifyRun(ctx, store, recs, run, v), Key: keyName}, nil
}

// verifyRun checks every artifact of run, steps in the run's order.
func verifyRun(ctx context.Context, store registry.Store, recs state.Records, run *state.Run, key *signature.Verifier) []*ArtifactCheck {
	order := run.Order
	if len(order) == 0 {
		order = slices.Sorted(maps.Keys(run.Steps))
	}
	var checks []*ArtifactCheck
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
			checks = append(checks, &ArtifactCheck{Step: step, Artifact: name, Digest: res.Outputs[name].Digest, Run: from})
		}
		if res.Log != nil {
			checks = append(checks, &ArtifactCheck{Step: step, Artifact: "log", Digest: res.Log.Digest, Run: from})
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
		c.OK = err == nil
		if err != nil {
			c.Kind, c.Error = verify.KindOf(err), err.Error()
		}
	}
	return checks
}

// openVerify selects the stack, the key to verify with and the stack's
// store.
func (p *Project) openVerify(opts VerifyOptions, stack string) (*signature.Verifier, string, registry.Store, error) {
	st, err := p.SelectStack(stack)
	if err != nil {
		return nil, "", nil, err
	}
	v, keyName, err := p.verifyKey(opts, st)
	if err != nil {
		return nil, "", nil, err
	}
	store, err := p.OpenStore(st)
	if err != nil {
		return nil, "", nil, err
	}
	return v, keyName, store, nil
}

// verifyKey returns the key to verify with: opts.Key, else the stack's
// public key (see PublicKey), and how to name it.
func (p *Project) verifyKey(opts VerifyOptions, st *schema.Stack) (*signature.Verifier, string, error) {
	if opts.Key != "" {
		v, _, err := LoadPublicKey(opts.Key)
		name := opts.KeyName
		if name == "" {
			name = opts.Key
		}
		return v, name, err
	}
	v, id, warning, err := p.PublicKey(st)
	switch {
	case err != nil:
		return nil, "", err
	case v == nil && warning != "":
		return nil, "", fmt.Errorf("stack %s: no public key to verify with: declare signer.public_key, or use --key", st.Name)
	case v == nil && SignerFlavor(st) == SignerNone:
		return nil, "", fmt.Errorf("stack %s signs nothing (signer: flavor: \"none\"): use --key", st.Name)
	case v == nil:
		_, pub := p.KeyFiles()
		return nil, "", fmt.Errorf("stack %s signs with the repository's key pair, and %s does not exist: nothing was signed yet; use --key", st.Name, relTo(p.ws.Root, pub))
	}
	return v, "key " + id, nil
}

// versionStack names the stack whose store holds a recorded version:
// stack, else the stack the record names, else (records made before they
// named it) a declared stack whose store holds the recorded repository,
// else "" (the stack SelectStack picks).
func (p *Project) versionStack(stack string, mv *state.ModelVersion) (string, error) {
	if stack != "" {
		return stack, nil
	}
	cfg, err := p.Config()
	if err != nil {
		return "", err
	}
	all := Stacks(cfg)
	if mv.Stack != "" {
		if _, ok := all[mv.Stack]; !ok {
			return "", fmt.Errorf("model %s %s was recorded in stack %s, which is not declared any more: name its store with --stack", mv.Model, mv.ModelVersion, mv.Stack)
		}
		return mv.Stack, nil
	}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		store, err := p.OpenStore(all[name])
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
