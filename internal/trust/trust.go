// Package trust decides whether a stored artifact may be reused: whether it
// carries a signature by the key zen signs with, and a provenance
// attestation by it naming the run and step the cache entry records, as
// package verify checks them.
//
// A plan asks this of every output a cache hit would reuse, thousands of
// times for a large repository. A Checker remembers, in a file under .zen,
// the signature and attestation manifests it has verified, by digest and
// by what they had to name: checking an artifact again reads its two small
// manifests and hashes them, and verifies only when one is new. A manifest
// that was replaced, or removed, is new and is verified from scratch.
package trust

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/registry/provenance"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/registry/verify"
)

// Checker verifies artifacts' signatures by one key. Its methods are safe
// for concurrent use.
type Checker struct {
	repo  signature.Repository
	v     *verify.Verifier
	keyID string
	file  string

	mu    sync.Mutex
	known map[string]bool // "<artifact> <signature manifest> <key id>"
	added []string
}

// New returns a Checker of the artifacts in repo against v, whose key
// keyID names; runs, where not nil, confirms attestations that name
// another run which stored the same bytes first. file remembers what verified ("" remembers nothing); a file
// that cannot be read is a cold start, not an error.
func New(repo signature.Repository, v *signature.Verifier, keyID, file string, runs verify.Runs) *Checker {
	c := &Checker{repo: repo, v: &verify.Verifier{Key: v}, keyID: keyID, file: file, known: map[string]bool{}}
	if runs != nil {
		c.v.Made = verify.MadeBy(runs)
	}
	if file == "" {
		return c
	}
	f, err := os.Open(file)
	if err != nil {
		return c
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		c.known[sc.Text()] = true
	}
	return c
}

// Untrusted is the error for an artifact that may not be reused. It wraps
// plan.ErrUntrusted and the verification error.
type Untrusted struct {
	Kind string // a verify.Kind: "not signed", "bad signature", ...
	Err  error
}

func (e *Untrusted) Error() string   { return e.Kind }
func (e *Untrusted) Unwrap() []error { return []error{plan.ErrUntrusted, e.Err} }

// Verify checks that the artifact digest ("sha256:<hex>") carries a good
// signature by the Checker's key, and a provenance attestation by it that
// names what made says (see verify.Verifier.Provenance). Its error is an
// *Untrusted when it does not; other errors (the store could not be read)
// are returned as they are.
func (c *Checker) Verify(ctx context.Context, digest string, made *provenance.Build) error {
	hexDigest, ok := strings.CutPrefix(digest, "sha256:")
	if !ok {
		return fmt.Errorf("artifact digest %q: only sha256 is supported", digest)
	}
	// What verified is remembered by the signature and attestation
	// manifests it was read from, the key, and what the record says.
	key := digest
	for _, suffix := range []string{".sig", ".att"} {
		raw, err := c.repo.Manifest(ctx, "sha256-"+hexDigest+suffix)
		switch {
		case err == nil:
			sum := sha256.Sum256(raw)
			key += " sha256:" + hex.EncodeToString(sum[:])
		case errors.Is(err, signature.ErrNotFound):
			key = ""
		default:
			return err
		}
		if key == "" {
			break
		}
	}
	if key != "" {
		want, err := json.Marshal(made)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(want)
		key += " " + c.keyID + " sha256:" + hex.EncodeToString(sum[:])
		c.mu.Lock()
		ok := c.known[key]
		c.mu.Unlock()
		if ok {
			return nil
		}
	}
	err := c.v.Signature(ctx, c.repo, digest)
	if err == nil {
		_, err = c.v.Provenance(ctx, c.repo, digest, made)
	}
	if k := verify.KindOf(err); k != 0 {
		return &Untrusted{Kind: k.String(), Err: err}
	} else if err != nil {
		return err
	}
	if key != "" {
		c.mu.Lock()
		if !c.known[key] {
			c.known[key] = true
			c.added = append(c.added, key)
		}
		c.mu.Unlock()
	}
	return nil
}

// Save appends what verified since New to the Checker's file.
func (c *Checker) Save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.file == "" || len(c.added) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(c.file), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(c.file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// One write: lines appended by two processes at once do not interleave.
	_, err = f.WriteString(strings.Join(c.added, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		c.added = nil
	}
	return err
}
