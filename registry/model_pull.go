package registry

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Reading a model version for PullModel: its manifest and config checked,
// each layer checked against its digest as it is unpacked, and the file or
// directory installed only once all of it matched.

// modelLayerType says whether mediaType is a ModelPack layer PullModel can
// unpack, and whether it is raw or a gzipped tar (else a tar).
func modelLayerType(mediaType string) (raw, gzipped, ok bool) {
	rest, found := strings.CutPrefix(mediaType, "application/vnd.cncf.model.")
	if !found {
		return false, false, false
	}
	switch {
	case strings.HasSuffix(rest, ".v1.raw"):
		return true, false, true
	case strings.HasSuffix(rest, ".v1.tar"):
		return false, false, true
	case strings.HasSuffix(rest, ".v1.tar+gzip"):
		return false, true, true
	}
	return false, false, false
}

// parseModelManifest decodes a ModelPack manifest.
func parseModelManifest(raw []byte) (*manifest, error) {
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.Config.MediaType != MediaTypeModelConfig || (m.ArtifactType != "" && m.ArtifactType != ArtifactTypeModelManifest) {
		return nil, fmt.Errorf("not a ModelPack model (artifactType %q, config %q)", m.ArtifactType, m.Config.MediaType)
	}
	if len(m.Layers) == 0 {
		return nil, errors.New("model has no layers")
	}
	for _, l := range m.Layers {
		if _, _, ok := modelLayerType(l.MediaType); !ok {
			return nil, fmt.Errorf("layer %s: media type %q not supported (compressed?)", l.Digest, l.MediaType)
		}
	}
	return &m, nil
}

// readBlob reads the blob d from r whole, checking it.
func readBlob(r io.Reader, d descriptor) ([]byte, error) {
	var b []byte
	err := readVerified(r, d, func(r io.Reader) (err error) {
		b, err = io.ReadAll(r)
		return err
	})
	return b, err
}

// fetchBlob reads the small blob d whole from b, checking it.
func fetchBlob(ctx context.Context, b blobs, d descriptor) ([]byte, error) {
	rc, err := b.open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readBlob(rc, d)
}

// pullModel writes the model h to dest; see ModelStore.PullModel.
func pullModel(ctx context.Context, b blobs, h v1.Hash, dest string) error {
	if err := absent(dest); err != nil {
		return err
	}
	raw, err := b.manifest(ctx, h)
	if err != nil {
		return err
	}
	if sha256Of(raw) != h {
		return fmt.Errorf("manifest: %w", ErrDigestMismatch)
	}
	m, err := parseModelManifest(raw)
	if err != nil {
		return err
	}
	if m.Config.Size > maxManifest {
		return fmt.Errorf("config of %d bytes: too large", m.Config.Size)
	}
	cfgBytes, err := fetchBlob(ctx, b, m.Config)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var cfg Model
	if err := json.Unmarshal(cfgBytes, &cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	diffIDs, err := layerDiffIDs(cfg.ModelFS.DiffIDs, m.Layers)
	if err != nil {
		return err
	}

	layer := func(l descriptor, consume func(io.Reader) error) error {
		rc, err := b.open(ctx, l)
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := readVerified(rc, l, consume); err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		return nil
	}
	if raw, _, _ := modelLayerType(m.Layers[0].MediaType); raw && len(m.Layers) == 1 && m.Annotations[annotationFolder] != "true" {
		return install(dest, func(out string) error {
			if err := checkRoom(filepath.Dir(out), m.Layers[0].Size); err != nil {
				return fmt.Errorf("layer %s: %w", m.Layers[0].Digest, err)
			}
			return layer(m.Layers[0], func(r io.Reader) error { return writeFile(r, out) })
		})
	}
	if name := m.Annotations[annotationFile]; name != "" {
		return install(dest, func(out string) error {
			return pullFileTar(m.Layers, diffIDs, name, out, layer)
		})
	}
	return install(dest, func(out string) error {
		if err := os.Mkdir(out, 0o755); err != nil {
			return err
		}
		var links []string
		for i, l := range m.Layers {
			err := layer(l, func(r io.Reader) error {
				raw, gzipped, _ := modelLayerType(l.MediaType)
				if raw {
					return writeRaw(r, out, l)
				}
				var ls []string
				var err error
				if gzipped {
					ls, err = extractGzip(r, out, diffIDs[i])
				} else {
					ls, err = extractInto(r, out)
				}
				links = append(links, ls...)
				return err
			})
			if err != nil {
				return err
			}
		}
		return checkLinks(out, links)
	})
}

// pullFileTar writes to out the file model that layers hold as one
// gzipped tar of the file named name (see annotationFile). Anything else
// in the tar, or a layer that is not such a tar, is an error.
func pullFileTar(layers []descriptor, diffIDs []v1.Hash, name, out string, layer func(descriptor, func(io.Reader) error) error) error {
	if len(layers) != 1 {
		return fmt.Errorf("file model %q: %d layers, want 1", name, len(layers))
	}
	if _, gzipped, _ := modelLayerType(layers[0].MediaType); !gzipped {
		return fmt.Errorf("file model %q: layer %s: media type %q, want a gzipped tar", name, layers[0].Digest, layers[0].MediaType)
	}
	if name != path.Base(name) || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("file model: name %q is not a file name", name)
	}
	dir := out + ".d"
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	err := layer(layers[0], func(r io.Reader) error {
		links, err := extractGzip(r, dir, diffIDs[0])
		if err == nil && len(links) > 0 {
			err = fmt.Errorf("file model %q: the layer holds a link", name)
		}
		return err
	})
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) != 1 || entries[0].Name() != name || !entries[0].Type().IsRegular() {
		return fmt.Errorf("file model %q: layer %s holds more or other than the file", name, layers[0].Digest)
	}
	return os.Rename(filepath.Join(dir, name), out)
}

// errDiffIDs is the error for a config whose modelfs.diffIds are not the
// layers'.
var errDiffIDs = errors.New("config: modelfs.diffIds do not match the layers")

// layerDiffIDs checks the config's diffIDs against the layers: an
// uncompressed layer is its own diff ID; a gzipped layer's, returned, is
// checked once it is uncompressed, by extractGzip.
func layerDiffIDs(ids []string, layers []descriptor) ([]v1.Hash, error) {
	if len(ids) != len(layers) {
		return nil, errDiffIDs
	}
	hs := make([]v1.Hash, len(layers))
	for i, l := range layers {
		if _, gzipped, _ := modelLayerType(l.MediaType); !gzipped {
			if ids[i] != l.Digest.String() {
				return nil, errDiffIDs
			}
			hs[i] = l.Digest
			continue
		}
		h, err := parseDigest(ids[i])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errDiffIDs, err)
		}
		hs[i] = h
	}
	return hs, nil
}

// extractGzip unpacks the gzipped tar read from r under root, as
// extractInto, and checks that the tar has the digest diffID.
func extractGzip(r io.Reader, root string, diffID v1.Hash) ([]string, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	hw := newHashingWriter(io.Discard)
	tr := io.TeeReader(zr, hw)
	links, err := extractInto(tr, root)
	if err != nil {
		return links, err
	}
	// The rest of the tar (its end, whatever follows), and gzip's
	// checksum, read at its end.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return links, fmt.Errorf("gunzip: %w", err)
	}
	if got := hw.digest(); got != diffID {
		return links, fmt.Errorf("%w: uncompressed, the layer has digest %s, not %s", errDiffIDs, got, diffID)
	}
	return links, nil
}

// writeRaw writes the raw layer l, read from r, to the path it is annotated
// with under root.
func writeRaw(r io.Reader, root string, l descriptor) error {
	p := l.Annotations[AnnotationFilepath]
	if p == "" {
		return fmt.Errorf("raw layer without a %s annotation", AnnotationFilepath)
	}
	name, err := entryName(p)
	if err != nil || name == "." {
		return fmt.Errorf("raw layer file path %q: path leaves the destination", p)
	}
	if err := mkParents(root, name); err != nil {
		return fmt.Errorf("raw layer file path %q: %w", p, err)
	}
	if err := checkRoom(root, l.Size); err != nil {
		return fmt.Errorf("raw layer file path %q: %w", p, err)
	}
	// O_EXCL: a second layer of the path, or one of a folder a layer has
	// made, is refused, and no symlink is written through.
	if err := writeFile(r, filepath.Join(root, filepath.FromSlash(name))); err != nil {
		return fmt.Errorf("raw layer file path %q: %w", p, err)
	}
	return nil
}
