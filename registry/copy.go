package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Transfer is what copying one manifest from a store to another needs, or
// did: the manifest and blobs the destination lacked, their bytes, and
// whether the tag had to be set.
type Transfer struct {
	// Manifests is 1 when the destination lacked the manifest.
	Manifests int `json:"manifests"`
	// Blobs and Bytes count the blobs the manifest lists that the
	// destination lacked, and their sizes.
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
	// Tag is true when the tag had to be set or moved; Was is the digest
	// the destination's tag pointed at before, "" for none.
	// Lacking lists those blobs, for a sum over copies that share some.
	Lacking []Blob `json:"-"`
	Tag     bool   `json:"tag"`
	Was     string `json:"was,omitempty"`
}

// Blob is a blob's digest and size.
type Blob struct {
	Digest string
	Size   int64
}

// Empty reports whether nothing had to be copied.
func (t Transfer) Empty() bool { return t.Manifests == 0 && t.Blobs == 0 && !t.Tag }

// copyManifest is what Copy reads of a manifest: the blobs it lists.
type copyManifest struct {
	MediaType string            `json:"mediaType"`
	Config    *descriptor       `json:"config"`
	Layers    []descriptor      `json:"layers"`
	Manifests []json.RawMessage `json:"manifests"`
}

// Copy makes dst hold the manifest digest ("sha256:<hex>") of src's
// repository (model "" for the artifacts' repository, else the model's),
// byte for byte, with every blob it lists, and points tag at it unless tag
// is "". Blobs, manifests and tags dst already holds are not written
// again, so a copy stopped midway is finished by the next. With dryRun it
// writes nothing and says what a copy would do. Both stores must be
// opened by this package.
//
// The digest is kept, so signatures of it and attestations about it hold
// in dst as in src; the manifest is checked against its digest, and each
// blob by dst as it is written.
func Copy(ctx context.Context, src, dst Store, model, digest, tag string, dryRun bool) (Transfer, error) {
	var t Transfer
	from, ok1 := src.(*store)
	to, ok2 := dst.(*store)
	if !ok1 || !ok2 {
		return t, errors.New("copy: both stores must be opened with OpenLayout or OpenRemote")
	}
	path := artifactsPath
	if model != "" {
		if err := checkModelName(model); err != nil {
			return t, err
		}
		path = modelPath(model)
	}
	doing := fmt.Sprintf("copy %s@%s", path, digest)
	err := func() error {
		h, err := parseDigest(digest)
		if err != nil {
			return err
		}
		if tag != "" {
			if err := checkTag(tag); err != nil {
				return err
			}
		}
		// A layout lists an artifact by its digest's hex, not as a tag
		// (see layoutBackend.putManifest): holding the manifest is all.
		_, isLayout := to.b.(*layoutBackend)
		if tag != "" && !(isLayout && path == artifactsPath && tag == h.Hex) {
			was, err := to.b.resolve(ctx, path, tag)
			switch {
			case errors.Is(err, ErrNotFound):
				t.Tag = true
			case err != nil:
				return fmt.Errorf("resolve %s: %w", tag, err)
			case was != h:
				t.Tag, t.Was = true, was.String()
			}
		}
		dstBlobs, err := to.b.reader(ctx, path)
		if err != nil {
			return err
		}
		raw, err := to.manifest(ctx, path, h)
		switch {
		case err == nil:
			// A store writes a manifest after its blobs: they are there.
			if t.Tag && !dryRun {
				return to.b.putManifest(ctx, path, tag, h, raw, false)
			}
			return nil
		case !errors.Is(err, ErrNotFound):
			return fmt.Errorf("%s: %w", dst, err)
		}
		t.Manifests = 1
		raw, err = from.manifest(ctx, path, h)
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		var m copyManifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("manifest %s: %w", h, err)
		}
		if len(m.Manifests) > 0 {
			return fmt.Errorf("manifest %s is an index (%s): zen copies image manifests only", h, m.MediaType)
		}
		list := m.Layers
		if m.Config != nil && m.Config.Digest != (v1.Hash{}) {
			list = append([]descriptor{*m.Config}, list...)
		}
		srcBlobs, err := from.b.reader(ctx, path)
		if err != nil {
			return err
		}
		var bs []*blobLayer
		seen := map[v1.Hash]bool{}
		for _, d := range list {
			if seen[d.Digest] {
				continue
			}
			seen[d.Digest] = true
			held, err := dstBlobs.has(ctx, d)
			if err != nil {
				return fmt.Errorf("%s: blob %s: %w", dst, d.Digest, err)
			}
			if held {
				continue
			}
			t.Blobs++
			t.Bytes += d.Size
			t.Lacking = append(t.Lacking, Blob{Digest: d.Digest.String(), Size: d.Size})
			bs = append(bs, &blobLayer{d: d, open: func() (io.ReadCloser, error) { return srcBlobs.open(ctx, d) }})
		}
		if dryRun {
			return nil
		}
		if err := to.putBlobs(ctx, path, bs, uploadConcurrency); err != nil {
			return err
		}
		return to.b.putManifest(ctx, path, tag, h, raw, false)
	}()
	if err != nil {
		return Transfer{}, fmt.Errorf("%s: %w", doing, err)
	}
	return t, nil
}
