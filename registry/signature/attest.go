package signature

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
)

// inTotoPayloadType is the DSSE payload type of an in-toto statement.
const inTotoPayloadType = "application/vnd.in-toto+json"

// statementType is the in-toto statement version cosign writes for every
// predicate type, SLSA v1 included.
const statementType = "https://in-toto.io/Statement/v0.1"

// statement is an in-toto statement about one artifact.
type statement struct {
	Type          string          `json:"_type"`
	PredicateType string          `json:"predicateType"`
	Subject       []subject       `json:"subject"`
	Predicate     json.RawMessage `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// verifies reports whether one of e's signatures is by v over its payload.
// The payload is decoded as standard base64 only, as Attest and cosign
// write it.
func verifies(e *dsse.Envelope, v Checker) bool {
	payload, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return false
	}
	m := dsse.PAE(e.PayloadType, payload)
	for _, s := range e.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err == nil && verify(v, sig, m) {
			return true
		}
	}
	return false
}

// Attest adds an in-toto attestation by s to the repository's
// "sha256-<hex>.att" tag, as `cosign attest` does: a DSSE envelope around
// the statement that the manifest digest (subject name repo.Reference(),
// digest sha256 <hex>) has predicate of predicateType, in a layer annotated
// with the predicate type. predicate must be a JSON object. With
// predicateType "https://slsa.dev/provenance/v0.2" it verifies with
// `cosign verify-attestation --type slsaprovenance`. An existing
// attestation manifest is extended, never replaced; the same statement by
// the same key is not added twice.
func Attest(ctx context.Context, repo Repository, digest, predicateType string, predicate json.RawMessage, s *Signer) error {
	h, err := parseDigest(digest)
	if err != nil {
		return err
	}
	if predicateType == "" {
		return errors.New("attest: empty predicate type")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(predicate, &obj); err != nil || obj == nil {
		return fmt.Errorf("attest: predicate is not a JSON object")
	}
	st, err := json.Marshal(statement{
		Type:          statementType,
		PredicateType: predicateType,
		Subject:       []subject{{Name: repo.Reference(), Digest: map[string]string{"sha256": h.Hex}}},
		Predicate:     predicate,
	})
	if err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	tag := tagOf(h, "att")
	m, err := readSigned(ctx, repo, tag)
	if err != nil {
		return fmt.Errorf("attest %s@%s: %w", repo.Reference(), digest, err)
	}
	payload := base64.StdEncoding.EncodeToString(st)
	pub := s.Public()
	for _, l := range m.manifest.Layers {
		e, _, err := readEnvelope(ctx, repo, l)
		if err != nil && !errors.Is(err, ErrBadSignature) {
			return fmt.Errorf("attest %s@%s: %w", repo.Reference(), digest, err)
		}
		if err == nil && e.Payload == payload && e.PayloadType == inTotoPayloadType && verifies(e, pub) {
			return nil
		}
	}
	// As cosign attest does: the key ID is empty.
	es, err := dsse.NewEnvelopeSigner(&sigdsse.SignerAdapter{SignatureSigner: s.sv})
	if err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	e, err := es.SignPayload(ctx, inTotoPayloadType, st)
	if err != nil {
		return fmt.Errorf("attest: sign: %w", err)
	}
	env, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	layer := v1.Descriptor{
		MediaType: dsseMediaType,
		Size:      int64(len(env)),
		Digest:    sha256Hash(env),
		// cosign requires the signature annotation, empty: the signature
		// is in the envelope.
		Annotations: map[string]string{signatureAnnotation: "", predicateTypeAnnotation: predicateType},
	}
	if err := m.append(ctx, repo, layer, env); err != nil {
		return fmt.Errorf("attest %s@%s: %w", repo.Reference(), digest, err)
	}
	return nil
}

// VerifyAttestation returns the predicate of the latest attestation of
// predicateType by v about the manifest digest. Its errors wrap ErrUnsigned
// when there is no attestation of that type, ErrBadSignature when one is
// forged, tampered with, or replayed from another digest (its subject
// differs), and ErrOtherKey when they are intact but by other keys. The
// predicate type is read from the signed statement, not from the layer's
// annotation.
func VerifyAttestation(ctx context.Context, repo Repository, digest, predicateType string, v Checker) (json.RawMessage, error) {
	all, err := VerifyAttestations(ctx, repo, digest, predicateType, v)
	if err != nil {
		return nil, err
	}
	return all[len(all)-1], nil
}

// VerifyAttestations is VerifyAttestation returning the predicates of all
// the attestations of predicateType by v that verify, oldest first: an
// artifact that several runs made carries one from each.
func VerifyAttestations(ctx context.Context, repo Repository, digest, predicateType string, v Checker) ([]json.RawMessage, error) {
	h, err := parseDigest(digest)
	if err != nil {
		return nil, err
	}
	fail := func(err error) error {
		return fmt.Errorf("verify attestation %s of %s@%s: %w", predicateType, repo.Reference(), digest, err)
	}
	m, err := readSigned(ctx, repo, tagOf(h, "att"))
	if err != nil {
		return nil, fail(err)
	}
	var (
		found []json.RawMessage
		bad   error
		n     int
	)
	for _, l := range m.manifest.Layers {
		e, st, err := readEnvelope(ctx, repo, l)
		if errors.Is(err, ErrBadSignature) {
			// Unreadable: count it if it claims to be of the type asked.
			if l.Annotations[predicateTypeAnnotation] == predicateType {
				n++
				bad = cmp.Or(bad, err)
			}
			continue
		} else if err != nil {
			return nil, fail(err)
		}
		if st.PredicateType != predicateType {
			continue
		}
		n++
		valid := e.PayloadType == inTotoPayloadType && verifies(e, v)
		about := false
		for _, s := range st.Subject {
			if s.Digest["sha256"] == h.Hex {
				about = true
			}
		}
		switch {
		case valid && about:
			found = append(found, st.Predicate)
		case valid:
			bad = cmp.Or(bad, fmt.Errorf("%w: layer %s: an attestation by this key about another digest (replayed)", ErrBadSignature, l.Digest))
		case !about:
			bad = cmp.Or(bad, fmt.Errorf("%w: layer %s: an attestation about another digest (tampered with or replayed)", ErrBadSignature, l.Digest))
		}
	}
	switch {
	case found != nil:
		return found, nil
	case bad != nil:
		return nil, fail(bad)
	case n == 0:
		return nil, fail(ErrUnsigned)
	default:
		return nil, fail(fmt.Errorf("%w: none of %d attestations verifies with it", ErrOtherKey, n))
	}
}

// readEnvelope reads an attestation layer: the envelope and the statement
// in it. A layer that cannot be read as one gives an error wrapping
// ErrBadSignature.
func readEnvelope(ctx context.Context, repo Repository, l v1.Descriptor) (*dsse.Envelope, *statement, error) {
	b, err := readLayer(ctx, repo, l)
	if err != nil {
		return nil, nil, err
	}
	var e dsse.Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, nil, fmt.Errorf("%w: layer %s: not a DSSE envelope: %v", ErrBadSignature, l.Digest, err)
	}
	payload, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: layer %s: envelope payload: %v", ErrBadSignature, l.Digest, err)
	}
	var st statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, nil, fmt.Errorf("%w: layer %s: not an in-toto statement: %v", ErrBadSignature, l.Digest, err)
	}
	return &e, &st, nil
}
