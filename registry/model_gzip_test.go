package registry

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// compressibleTree is modelTree with a weights file that gzip shrinks, so
// that every layer is smaller compressed.
var compressibleTree = func() map[string]string {
	t := maps.Clone(modelTree)
	t["weights/part-2.bin"] = strings.Repeat("0.125 0.25 0.5 1.0\n", 20_000)
	return t
}()

var gzipMeta = func() ModelMeta {
	m := meta
	m.Compress = true
	return m
}()

// gunzipDigest returns the digest of the gzipped content b, uncompressed.
func gunzipDigest(t testing.TB, b []byte) v1.Hash {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := v1.SHA256(zr)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestModelGzipDeterministic checks that compressed versions have one
// digest, whatever the copy and the store, and another than uncompressed.
func TestModelGzipDeterministic(t *testing.T) {
	ctx := context.Background()
	for i, c := range models {
		t.Run(c.name, func(t *testing.T) {
			a := makeModel(t, t.TempDir(), i)
			b := makeModel(t, t.TempDir(), i)
			age(b)
			digests := map[string]bool{}
			var plain string
			for _, st := range modelStores {
				s := st.open(t)
				for _, p := range []string{a, a, b} {
					d, err := s.PushModel(ctx, p, gzipMeta)
					if err != nil {
						t.Fatal(err)
					}
					digests[d.Digest] = true
				}
				d, err := s.PushModel(ctx, a, meta)
				if err != nil {
					t.Fatal(err)
				}
				plain = d.Digest
			}
			if len(digests) != 1 {
				t.Fatalf("got digests %v, want one", digests)
			}
			// A file is compressed too, as a gzipped tar of it.
			if digests[plain] {
				t.Errorf("compressed digests %v, uncompressed %s: want another digest", digests, plain)
			}
		})
	}
}

// TestModelGzipRoundTrip pushes a directory compressed, checks its layers
// against the uncompressed version's, and pulls it.
func TestModelGzipRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, st := range modelStores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t)
			src := filepath.Join(t.TempDir(), "model")
			writeTree(t, src, compressibleTree)
			// A large file gets a layer of its own, compressed too.
			sparseFile(t, filepath.Join(src, "weights", "big.bin"), testLargeFile)

			dz, err := s.PushModel(ctx, src, gzipMeta)
			if err != nil {
				t.Fatal(err)
			}
			d, err := s.PushModel(ctx, src, meta)
			if err != nil {
				t.Fatal(err)
			}
			if dz.Digest == d.Digest || dz.Size >= d.Size {
				t.Errorf("compressed %+v, uncompressed %+v: want another digest, a smaller size", dz, d)
			}
			mz, cfgz := readModel(t, s, meta.Name, dz.Digest)
			m, cfg := readModel(t, s, meta.Name, d.Digest)
			want := []string{MediaTypeModelWeightGzip, MediaTypeModelWeightGzip, MediaTypeModelWeightConfigGzip, MediaTypeModelDocGzip}
			var types, ids []string
			var size int64
			for _, l := range mz.Layers {
				types = append(types, l.MediaType)
				size += l.Size
			}
			for _, l := range m.Layers {
				ids = append(ids, l.Digest.String())
			}
			if !slices.Equal(types, want) {
				t.Errorf("layers %v, want %v", types, want)
			}
			if dz.Size != size {
				t.Errorf("size %d, want the layers' %d", dz.Size, size)
			}
			// The config is the uncompressed version's: the diff IDs are
			// the tars'.
			if !slices.Equal(cfgz.ModelFS.DiffIDs, ids) || mz.Config.Digest != m.Config.Digest {
				t.Errorf("diffIds %v (config %s), want the uncompressed layers' %v (config %s)", cfgz.ModelFS.DiffIDs, mz.Config.Digest, ids, m.Config.Digest)
			}
			if !slices.Equal(cfg.ModelFS.DiffIDs, ids) {
				t.Errorf("uncompressed diffIds %v, want %v", cfg.ModelFS.DiffIDs, ids)
			}
			for i, l := range mz.Layers {
				if l.Size >= m.Layers[i].Size {
					t.Errorf("layer %d: %d bytes compressed, %d not", i, l.Size, m.Layers[i].Size)
				}
				if got, want := l.Annotations[AnnotationFilepath], m.Layers[i].Annotations[AnnotationFilepath]; got != want {
					t.Errorf("layer %d: file path %q, want %q", i, got, want)
				}
				b, err := s.ModelRepository(meta.Name).Blob(ctx, l.Digest.String())
				if err != nil {
					t.Fatal(err)
				}
				if got := gunzipDigest(t, b); got.String() != ids[i] {
					t.Errorf("layer %d uncompresses to %s, want %s", i, got, ids[i])
				}
			}

			dest := filepath.Join(t.TempDir(), "dest")
			if err := s.PullModel(ctx, dz.Digest, meta.Name, dest); err != nil {
				t.Fatal(err)
			}
			if got, want := snapshot(t, dest), snapshot(t, src); !equal(got, want) {
				t.Errorf("pulled\n%v\nwant\n%v", got, want)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// corruptBlob serves the blob digest with a byte changed.
type corruptBlob struct{ digest string }

func (c *corruptBlob) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.digest == "" || r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+c.digest) {
			h.ServeHTTP(w, r)
			return
		}
		rec := &recorder{header: http.Header{}, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		b := rec.body.Bytes()
		if len(b) > 0 {
			b = flip(len(b) / 2)(b)
		}
		maps.Copy(w.Header(), rec.header)
		w.WriteHeader(rec.code)
		w.Write(b)
	})
}

type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// TestPullModelGzipCorrupt checks that a compressed layer altered, or not
// the tar its diff ID names, is not pulled.
func TestPullModelGzipCorrupt(t *testing.T) {
	ctx := context.Background()
	t.Run("layout", func(t *testing.T) {
		s := asLayout(newLayout(t))
		d, err := s.PushModel(ctx, makeModel(t, t.TempDir(), 2), gzipMeta)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []int{0, 2} {
			l := readLayoutModel(t, s, d.Digest).Layers[i]
			p := s.blobPath(l.Digest)
			good, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, at := range []int{1, len(good) / 2, len(good) - 2} {
				if err := os.WriteFile(p, flip(at)(bytes.Clone(good)), 0o644); err != nil {
					t.Fatal(err)
				}
				parent := t.TempDir()
				err = s.PullModel(ctx, d.Digest, meta.Name, filepath.Join(parent, "dest"))
				if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "layer "+l.Digest.String()) {
					t.Errorf("layer %d, byte %d changed: PullModel = %v, want ErrDigestMismatch", i, at, err)
				}
				if left, _ := os.ReadDir(parent); len(left) != 0 {
					t.Errorf("PullModel left %v behind", left)
				}
			}
			if err := os.WriteFile(p, good, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PullModel(ctx, d.Digest, meta.Name, filepath.Join(t.TempDir(), "dest")); err != nil {
			t.Errorf("PullModel once the blobs are back: %v", err)
		}
	})
	t.Run("remote", func(t *testing.T) {
		var c corruptBlob
		s := newRemote(t, c.wrap).(ModelStore)
		d, err := s.PushModel(ctx, makeModel(t, t.TempDir(), 2), gzipMeta)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := readModel(t, s, meta.Name, d.Digest)
		c.digest = m.Layers[1].Digest.String()
		parent := t.TempDir()
		err = s.PullModel(ctx, d.Digest, meta.Name, filepath.Join(parent, "dest"))
		if !errors.Is(err, ErrDigestMismatch) {
			t.Errorf("PullModel of an altered layer = %v, want ErrDigestMismatch", err)
		}
		if left, _ := os.ReadDir(parent); len(left) != 0 {
			t.Errorf("PullModel left %v behind", left)
		}
	})

	// Whole blobs, a config that lies about what they hold.
	for _, st := range modelStores {
		t.Run(st.name+"/diffIds", func(t *testing.T) {
			s := st.open(t)
			d, err := s.PushModel(ctx, makeModel(t, t.TempDir(), 2), gzipMeta)
			if err != nil {
				t.Fatal(err)
			}
			m, cfg := readModel(t, s, meta.Name, d.Digest)
			repo := s.ModelRepository(meta.Name)
			for _, ids := range [][]string{
				{cfg.ModelFS.DiffIDs[1], cfg.ModelFS.DiffIDs[0], cfg.ModelFS.DiffIDs[2]}, // swapped
				{cfg.ModelFS.DiffIDs[0], cfg.ModelFS.DiffIDs[1]},                         // one short
				{cfg.ModelFS.DiffIDs[0], cfg.ModelFS.DiffIDs[1], "sha256:nothex"},
				{m.Layers[0].Digest.String(), cfg.ModelFS.DiffIDs[1], cfg.ModelFS.DiffIDs[2]}, // compressed digest
			} {
				bad := cfg
				bad.ModelFS.DiffIDs = ids
				b := must(json.Marshal(bad))
				if err := repo.PutBlob(ctx, sha256Of(b).String(), b); err != nil {
					t.Fatal(err)
				}
				bm := *m
				bm.Config = descriptor{MediaType: MediaTypeModelConfig, Digest: sha256Of(b), Size: int64(len(b))}
				raw := must(json.Marshal(bm))
				if err := repo.PutManifest(ctx, sha256Of(raw).String(), raw); err != nil {
					t.Fatal(err)
				}
				parent := t.TempDir()
				err := s.PullModel(ctx, sha256Of(raw).String(), meta.Name, filepath.Join(parent, "dest"))
				if err == nil || !strings.Contains(err.Error(), "modelfs.diffIds do not match the layers") {
					t.Errorf("diffIds %v: PullModel = %v, want the diffIds' error", ids, err)
				}
				if left, _ := os.ReadDir(parent); len(left) != 0 {
					t.Errorf("PullModel left %v behind", left)
				}
			}
		})
	}
}

// TestModelGzipChanged checks that a compressed layer written again for an
// upload must be what it was when packed.
func TestModelGzipChanged(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	writeTree(t, dir, compressibleTree)
	a, err := packModel(dir, gzipMeta, "", testLargeFile)
	if err != nil {
		t.Fatal(err)
	}
	defer a.cleanup()
	l := a.layers[0]
	rc, err := l.open()
	if err != nil {
		t.Fatal(err)
	}
	h, n, err := v1.SHA256(rc)
	rc.Close()
	if err != nil || h != l.d.Digest || n != l.d.Size {
		t.Fatalf("open = %s, %d bytes, %v; want %s, %d bytes", h, n, err, l.d.Digest, l.d.Size)
	}
	// Same size, another byte.
	p := filepath.Join(dir, "weights", "part-2.bin")
	b := []byte(compressibleTree["weights/part-2.bin"])
	if err := os.WriteFile(p, flip(100)(bytes.Clone(b)), 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err = l.open()
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	if err == nil || !strings.Contains(err.Error(), "content changed") {
		t.Errorf("open after a change: %v, want content changed", err)
	}
}

// TestModelGzipGGCR checks that go-containerregistry reads a compressed
// version: its layers uncompress to the tars the config names.
func TestModelGzipGGCR(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, img v1.Image, diffIDs []string) {
		t.Helper()
		ls, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) != len(diffIDs) {
			t.Fatalf("%d layers, want %d", len(ls), len(diffIDs))
		}
		for i, l := range ls {
			mt, err := l.MediaType()
			if err != nil || !strings.HasSuffix(string(mt), ".tar+gzip") {
				t.Errorf("layer %d: media type %s, %v", i, mt, err)
			}
			rc, err := l.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			h, _, err := v1.SHA256(io.TeeReader(rc, &buf))
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if h.String() != diffIDs[i] {
				t.Errorf("layer %d uncompresses to %s, want %s", i, h, diffIDs[i])
			}
			if names := tarNames(t, &buf); len(names) == 0 {
				t.Errorf("layer %d: empty tar", i)
			}
		}
	}
	t.Run("layout", func(t *testing.T) {
		dir := t.TempDir()
		s := openLayout(t, dir)
		d, err := s.PushModel(ctx, makeModel(t, t.TempDir(), 2), gzipMeta)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Tag(ctx, meta.Name, "1.0.0", d.Digest); err != nil {
			t.Fatal(err)
		}
		_, cfg := readModel(t, s, meta.Name, d.Digest)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		p, err := layout.FromPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		img, err := p.Image(must(v1.NewHash(d.Digest)))
		if err != nil {
			t.Fatal(err)
		}
		check(t, img, cfg.ModelFS.DiffIDs)
	})
	t.Run("remote", func(t *testing.T) {
		s := newRemote(t, nil)
		ms := s.(ModelStore)
		d, err := ms.PushModel(ctx, makeModel(t, t.TempDir(), 2), gzipMeta)
		if err != nil {
			t.Fatal(err)
		}
		_, cfg := readModel(t, ms, meta.Name, d.Digest)
		img, err := remote.Image(must(name.NewDigest(remoteOf(s).base + "/models/fraud@" + d.Digest)))
		if err != nil {
			t.Fatal(err)
		}
		check(t, img, cfg.ModelFS.DiffIDs)
	})
}

// TestModelGzipFile checks that a file model is compressed too: one
// gzipped tar of the file, smaller than the file, pulled back as that
// file. A manifest that marks a file model is held to holding exactly it.
func TestModelGzipFile(t *testing.T) {
	ctx := context.Background()
	for _, st := range modelStores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t)
			content := strings.Repeat("0.125 0.25 0.5 1.0\n", 20_000)
			src := filepath.Join(t.TempDir(), "model.onnx")
			if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			dz, err := s.PushModel(ctx, src, gzipMeta)
			if err != nil {
				t.Fatal(err)
			}
			mz, _ := readModel(t, s, meta.Name, dz.Digest)
			if len(mz.Layers) != 1 || mz.Layers[0].MediaType != MediaTypeModelWeightGzip {
				t.Fatalf("layers %+v, want one %s", mz.Layers, MediaTypeModelWeightGzip)
			}
			if mz.Layers[0].Size*10 > int64(len(content)) {
				t.Errorf("layer of %d bytes for a file of %d: not compressed", mz.Layers[0].Size, len(content))
			}
			if got := mz.Annotations[annotationFile]; got != "model.onnx" {
				t.Errorf("annotation %s = %q, want the file's name", annotationFile, got)
			}
			dest := filepath.Join(t.TempDir(), "dest")
			if err := s.PullModel(ctx, dz.Digest, meta.Name, dest); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(dest); err != nil || string(b) != content {
				t.Fatalf("pulled %d bytes, %v; want the file", len(b), err)
			}

			// bad: the annotation names a file the tar does not hold as
			// its only entry, or is not a file name.
			repo := s.ModelRepository(meta.Name)
			raw, err := repo.Manifest(ctx, dz.Digest)
			if err != nil {
				t.Fatal(err)
			}
			for _, bad := range []struct{ name, want string }{
				{"other.onnx", `file model "other.onnx": layer sha256:`},
				{"../model.onnx", `file model: name "../model.onnx" is not a file name`},
				{"..", `file model: name ".." is not a file name`},
			} {
				var m manifest
				if err := json.Unmarshal(raw, &m); err != nil {
					t.Fatal(err)
				}
				m.Annotations[annotationFile] = bad.name
				forged := must(json.Marshal(m))
				if err := repo.PutManifest(ctx, "forged", forged); err != nil {
					t.Fatal(err)
				}
				parent := t.TempDir()
				err := s.PullModel(ctx, sha256Of(forged).String(), meta.Name, filepath.Join(parent, "dest"))
				if err == nil || !strings.Contains(err.Error(), bad.want) {
					t.Errorf("PullModel with %s=%q = %v, want %q", annotationFile, bad.name, err, bad.want)
				}
				if left, _ := os.ReadDir(parent); len(left) != 0 {
					t.Errorf("PullModel left %v behind", left)
				}
			}
		})
	}
}
