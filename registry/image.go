package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrImageNotFound is wrapped by ResolveImage's error for an image the
// registry does not have.
var ErrImageNotFound = errors.New("no such image in the registry")

// ResolveImage pins an image reference to its manifest digest:
// "python:3.11" → "index.docker.io/library/python@sha256:…". A reference
// already by digest is checked to exist and returned in the same full
// form. Credentials and the scheme follow the registry store's rules
// (OpenRemote): authn.DefaultKeychain, plain HTTP for loopback and
// private registries.
func ResolveImage(ctx context.Context, ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("not an image reference: %w", err)
	}
	desc, err := remote.Head(r,
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithUserAgent("zen"))
	var terr *transport.Error
	switch {
	case err == nil:
	case notFound(err):
		return "", fmt.Errorf("%w: %s", ErrImageNotFound, r.Context().Name())
	case errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden):
		return "", fmt.Errorf("not allowed to read %s (docker login?): %w", r.Context().Name(), err)
	case unreachable(err):
		return "", reach(err)
	default:
		return "", err
	}
	if d, ok := r.(name.Digest); ok && d.DigestStr() != desc.Digest.String() {
		return "", fmt.Errorf("the registry serves %s as %s", ref, desc.Digest)
	}
	return r.Context().Name() + "@" + desc.Digest.String(), nil
}

// PlainHTTPImage reports whether the registry of an image reference is
// spoken to over plain HTTP, as ResolveImage does: a loopback or private
// registry (go-containerregistry's rule). Such a registry is asked without
// TLS when the image is pulled too.
func PlainHTTPImage(ref string) bool {
	r, err := name.ParseReference(ref)
	return err == nil && r.Context().Registry.Scheme() == "http"
}
