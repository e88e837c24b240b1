// Package verify decides whether a stored artifact or model version is what
// the state ref says it is: present, signed by the key, attested by the key
// with provenance naming the recorded run, commit, entry point and inputs,
// and with content that still matches its digests.
//
// It is zen's one verifier: zen verify, zen verify run, stage moves and
// repairs, cache hits and {model, stage} inputs all check through it, so a
// check added here holds everywhere. Each failure is an *Error of one Kind,
// and the kinds are told apart: an artifact that is missing from the store
// is not reported as unsigned.
package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/provenance"
	"github.com/zen-dev/zen/registry/signature"
)

// Kind is one way verification fails.
type Kind int

const (
	// Missing: the artifact, its tag, or a blob of it is not in the store.
	Missing Kind = iota + 1
	// Unsigned: no signature, or no provenance attestation, at all.
	Unsigned
	// BadSignature: a signature or attestation is forged, tampered with,
	// or replayed from another digest.
	BadSignature
	// OtherKey: signatures are intact, but none is by the key.
	OtherKey
	// TagMoved: the store's tag points at another digest than the record.
	TagMoved
	// ContentAltered: a stored blob does not match its digest.
	ContentAltered
	// ProvenanceMismatch: the attestation verifies, but names another run,
	// commit, entry point or inputs than the record.
	ProvenanceMismatch
)

func (k Kind) String() string {
	switch k {
	case Missing:
		return "missing from the store"
	case Unsigned:
		return "not signed"
	case BadSignature:
		return "bad signature"
	case OtherKey:
		return "signed by another key"
	case TagMoved:
		return "tag moved"
	case ContentAltered:
		return "content altered"
	case ProvenanceMismatch:
		return "provenance does not match the record"
	}
	return "unknown"
}

// Error is a verification failure.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of a verification failure in err's chain, or 0
// when err is not one (the store could not be read, say).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

func fail(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Err: fmt.Errorf(format, args...)}
}

// classify turns the signature package's errors into Errors of their Kind;
// other errors are returned as they are.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	for _, c := range []struct {
		sentinel error
		kind     Kind
	}{{signature.ErrUnsigned, Unsigned}, {signature.ErrOtherKey, OtherKey}, {signature.ErrBadSignature, BadSignature}} {
		if errors.Is(err, c.sentinel) {
			return &Error{Kind: c.kind, Err: fmt.Errorf("%s: %w", what, err)}
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Verifier checks artifacts against one key.
type Verifier struct {
	// Key checks signatures: a public key (*signature.Verifier).
	Key signature.Checker
	// Made, where set, reports whether the record of run says that it made
	// digest as entry (pipeline.step.output, or .log) from commit. The same
	// bytes are attested once, by the first run that stored them; an
	// attestation naming another run stands only if that run's record
	// confirms it. Without Made, only the expected run's attestation does.
	Made func(run, entry, commit, digest string) (bool, error)
}

// Result is what verification found beyond "it holds".
type Result struct {
	// SameAs names, when the attestation that holds is another step's or
	// run's that stored the same bytes first, that one: "ENTRY in run RUN".
	SameAs string
}

// Signature checks only that digest is signed by the key, in repo (a
// store's raw repository, through Repository).
func (v *Verifier) Signature(ctx context.Context, repo signature.Repository, digest string) error {
	return classify(signature.Verify(ctx, repo, digest, v.Key), "signature")
}

// Image checks that an image, pinned by digest ("registry/repo@sha256:…",
// as registry.ResolveImage returns it), is signed by the key in its own
// repository, where cosign sign puts the signature (the tag
// "sha256-<hex>.sig"). An image carries no provenance of zen's: only the
// signature is checked.
func (v *Verifier) Image(ctx context.Context, pinned string) error {
	at := strings.LastIndex(pinned, "@")
	if at < 0 {
		return fmt.Errorf("image %s is not pinned by digest", pinned)
	}
	repo, err := registry.ImageRepository(pinned)
	if err != nil {
		return err
	}
	return v.Signature(ctx, repo, pinned[at+1:])
}

// Provenance checks that digest carries a provenance attestation by the
// key that names what want says: the run, the entry point, and where want
// has them the commit and the inputs. With no attestation of want's run,
// one of another run that the record confirms made the same bytes (see
// Made) stands, and Result.SameAs names it.
func (v *Verifier) Provenance(ctx context.Context, repo signature.Repository, digest string, want *provenance.Build) (Result, error) {
	preds, err := signature.VerifyAttestations(ctx, repo, digest, provenance.Type, v.Key)
	if err != nil {
		return Result{}, classify(err, "provenance")
	}
	var mismatch, sameAs string
	for _, raw := range preds {
		got, err := provenance.Parse(raw)
		if err != nil {
			mismatch = cmpOr(mismatch, "an attestation by the key "+err.Error())
			continue
		}
		why := provenance.Mismatch(got, want)
		if why == "" {
			return Result{}, nil
		}
		mismatch = cmpOr(mismatch, why)
		if sameAs != "" || v.Made == nil || got.Run == want.Run && got.Entry == want.Entry {
			continue
		}
		ok, err := v.Made(got.Run, got.Entry, got.Commit, digest)
		if err != nil {
			return Result{}, fmt.Errorf("provenance: %w", err)
		}
		if ok {
			sameAs = got.Entry + " in run " + got.Run
		}
	}
	if sameAs != "" {
		return Result{SameAs: sameAs}, nil
	}
	return Result{}, fail(ProvenanceMismatch, "provenance: the attestation by the key %s", mismatch)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Artifact checks a run artifact in store: present, signed, attested as
// want says, and, with content, still matching its digest.
func (v *Verifier) Artifact(ctx context.Context, store registry.Store, digest string, want *provenance.Build, content bool) (Result, error) {
	repo := store.ArtifactRepository()
	if _, err := repo.Manifest(ctx, digest); errors.Is(err, registry.ErrNotFound) {
		return Result{}, fail(Missing, "%s is missing from %s", digest, store)
	} else if err != nil {
		return Result{}, err
	}
	if err := v.Signature(ctx, repo, digest); err != nil {
		return Result{}, err
	}
	res, err := v.Provenance(ctx, repo, digest, want)
	if err != nil {
		return res, err
	}
	if content {
		err = pulled(func(dest string) error { return store.Pull(ctx, digest, dest) })
	}
	return res, err
}

// Model checks a model version in store: that tag (the version or a stage;
// "" for none) points at digest, that digest is signed and attested as
// want says, and, with content, that every blob still matches its digest.
func (v *Verifier) Model(ctx context.Context, ms registry.ModelStore, model, tag, digest string, want *provenance.Build, content bool) error {
	if tag != "" {
		got, err := ms.Resolve(ctx, model, tag)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			return fail(Missing, "%s:%s is missing from %s", model, tag, ms)
		case err != nil:
			return err
		case got != digest:
			return fail(TagMoved, "the store's %s:%s is %s, the record says %s: tampered, or the tag moved outside zen", model, tag, got, digest)
		}
	}
	repo := ms.ModelRepository(model)
	if _, err := repo.Manifest(ctx, digest); errors.Is(err, registry.ErrNotFound) {
		return fail(Missing, "%s@%s is missing from %s", model, digest, ms)
	} else if err != nil {
		return err
	}
	if err := v.Signature(ctx, repo, digest); err != nil {
		return err
	}
	if _, err := v.Provenance(ctx, repo, digest, want); err != nil {
		return err
	}
	if !content {
		return nil
	}
	return pulled(func(dest string) error { return ms.PullModel(ctx, digest, model, dest) })
}

// pulled runs pull into a temporary folder, which checks every blob
// against its digest, and removes what it wrote.
func pulled(pull func(dest string) error) error {
	tmp, err := os.MkdirTemp("", "zen-verify-")
	if err != nil {
		return err
	}
	defer removeAll(tmp)
	switch err := pull(filepath.Join(tmp, "content")); {
	case errors.Is(err, registry.ErrDigestMismatch):
		return &Error{Kind: ContentAltered, Err: fmt.Errorf("stored content was altered: %w", err)}
	case errors.Is(err, registry.ErrNotFound):
		return &Error{Kind: Missing, Err: fmt.Errorf("content: %w", err)}
	case err != nil:
		return fmt.Errorf("content: %w", err)
	}
	return nil
}

// removeAll removes a folder whose content was made read-only.
func removeAll(dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(dir)
}
