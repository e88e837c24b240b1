package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/zen-dev/zen/schema"
)

var modelStores = []struct {
	name string
	open func(testing.TB) ModelStore
}{
	{"layout", func(t testing.TB) ModelStore { return newLayout(t).(ModelStore) }},
	{"remote", func(t testing.TB) ModelStore { return newRemote(t, nil).(ModelStore) }},
}

// modelTree is a model directory with a file of every kind.
var modelTree = map[string]string{
	"model.onnx":           string(randomBytes(300_000, 7)),
	"weights/part-1.bin":   string(randomBytes(50_000, 8)),
	"config.json":          `{"hidden": 8}`,
	"tokenizer.json":       `{"vocab": {}}`,
	"tokenizer.model":      "spm",
	"README.md":            "# fraud detector\n",
	"LICENSE":              "MIT\n",
	"docs/usage.md":        "use it\n",
	"serve.sh*":            "#!/bin/sh\n",
	"empty/":               "",
	"latest -> model.onnx": "",
}

// plainTree is a model directory of plain files only, which PushModel
// packs one raw layer per file.
var plainTree = map[string]string{
	"model.onnx":         string(randomBytes(300_000, 7)),
	"weights/part-1.bin": string(randomBytes(50_000, 8)),
	"weights/part-2.bin": string(randomBytes(50_000, 8)), // the same content
	"config.json":        `{"hidden": 8}`,
	"tokenizer.model":    "spm",
	"README.md":          "# fraud detector\n",
	"docs/usage.md":      "use it\n",
	"a.txt":              "sorts before a/b.bin",
	"a/b.bin":            "",
}

// The models pushed in round trips and determinism tests.
var models = []struct {
	name   string
	file   string            // a file's content, if tree is nil
	tree   map[string]string // a directory
	layers []string          // the layers' media types
}{
	{name: "file", file: "weights\n", layers: []string{MediaTypeModelWeightRaw}},
	{name: "empty file", file: "", layers: []string{MediaTypeModelWeightRaw}},
	{name: "dir", tree: modelTree, layers: []string{MediaTypeModelWeight, MediaTypeModelWeightConfig, MediaTypeModelDoc}},
	{name: "one doc", tree: map[string]string{"README": "hi"}, layers: []string{MediaTypeModelDocRaw}},
	{name: "plain dir", tree: plainTree, layers: []string{
		MediaTypeModelDocRaw,          // README.md
		MediaTypeModelWeightConfigRaw, // a.txt
		MediaTypeModelWeightRaw,       // a/b.bin
		MediaTypeModelWeightConfigRaw, // config.json
		MediaTypeModelDocRaw,          // docs/usage.md
		MediaTypeModelWeightRaw,       // model.onnx
		MediaTypeModelWeightConfigRaw, // tokenizer.model
		MediaTypeModelWeightRaw,       // weights/part-1.bin
		MediaTypeModelWeightRaw,       // weights/part-2.bin
	}},
}

var meta = ModelMeta{Name: "fraud", Version: "1.0.0", Revision: "abc123", SourceURL: "https://git.example.com/ml", Description: "finds fraud", Format: "onnx"}

func makeModel(t testing.TB, dir string, i int) string {
	t.Helper()
	m := models[i]
	p := filepath.Join(dir, "model.onnx")
	if m.tree != nil {
		writeTree(t, p, m.tree)
		return p
	}
	if err := os.WriteFile(p, []byte(m.file), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// readModel reads a model's manifest and config through its raw repository.
func readModel(t testing.TB, s ModelStore, model, digest string) (*manifest, Model) {
	t.Helper()
	ctx := context.Background()
	repo := s.ModelRepository(model)
	raw, err := repo.Manifest(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseModelManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := repo.Blob(ctx, m.Config.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	var cfg Model
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	return m, cfg
}

func TestModelRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, st := range modelStores {
		for i, c := range models {
			t.Run(st.name+"/"+c.name, func(t *testing.T) {
				s := st.open(t)
				src := makeModel(t, t.TempDir(), i)
				d, err := s.PushModel(ctx, src, meta)
				if err != nil {
					t.Fatal(err)
				}
				if d.MediaType != ArtifactTypeModelManifest || !strings.HasPrefix(d.Digest, "sha256:") {
					t.Errorf("PushModel = %+v", d)
				}
				m, cfg := readModel(t, s, meta.Name, d.Digest)
				if m.ArtifactType != ArtifactTypeModelManifest || m.Config.MediaType != MediaTypeModelConfig {
					t.Errorf("manifest has artifactType %q, config %q", m.ArtifactType, m.Config.MediaType)
				}
				var types, ids []string
				var size int64
				for _, l := range m.Layers {
					types = append(types, l.MediaType)
					ids = append(ids, l.Digest.String())
					size += l.Size
				}
				if !slices.Equal(types, c.layers) {
					t.Errorf("layers %v, want %v", types, c.layers)
				}
				if d.Size != size {
					t.Errorf("size %d, want the layers' %d", d.Size, size)
				}
				want := Model{
					Descriptor: ModelDescriptor{Name: "fraud", Version: "1.0.0", Revision: "abc123", SourceURL: "https://git.example.com/ml", Description: "finds fraud"},
					ModelFS:    ModelFS{Type: "layers", DiffIDs: ids},
					Config:     ModelConfig{Format: "onnx"},
				}
				if fmt.Sprint(cfg) != fmt.Sprint(want) {
					t.Errorf("config %+v, want %+v", cfg, want)
				}
				if c.tree == nil && m.Layers[0].Annotations[AnnotationFilepath] != "model.onnx" {
					t.Errorf("raw layer annotations %v, want the file's name", m.Layers[0].Annotations)
				}
				// A directory's raw layers are titled with their paths, so
				// that oras pull writes them, and in the paths' order.
				var paths []string
				for _, l := range m.Layers {
					if raw, _, _ := modelLayerType(l.MediaType); raw && c.tree != nil {
						p := l.Annotations[AnnotationFilepath]
						if l.Annotations[titleAnnotation] != p || c.tree[p] != string(must(os.ReadFile(filepath.Join(src, p)))) {
							t.Errorf("raw layer annotations %v, want the file's path as title", l.Annotations)
						}
						paths = append(paths, p)
					}
				}
				if !slices.IsSorted(paths) {
					t.Errorf("raw layers %v, want them in the paths' order", paths)
				}
				if got := m.Annotations[annotationFolder]; (c.tree != nil && paths != nil) != (got == "true") {
					t.Errorf("manifest annotations %v", m.Annotations)
				}

				dest := filepath.Join(t.TempDir(), "new", "dest")
				if err := s.PullModel(ctx, d.Digest, meta.Name, dest); err != nil {
					t.Fatal(err)
				}
				if got, want := snapshot(t, dest), snapshot(t, src); !equal(got, want) {
					t.Errorf("pulled\n%v\nwant\n%v", got, want)
				}
				if err := s.PullModel(ctx, d.Digest, meta.Name, dest); !errors.Is(err, fs.ErrExist) {
					t.Errorf("PullModel to an existing dest: %v, want fs.ErrExist", err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestModelGolden pins the model format: if a digest changes, versions made
// from then on have other digests than the same files had before (recorded
// versions keep theirs). The file's changed when its layer gained
// org.opencontainers.image.title; "one doc" changed, and "plain dir" came,
// when a directory of plain files became one raw layer per file.
func TestModelGolden(t *testing.T) {
	want := map[string]string{
		"file":      "sha256:21b61a4db49c440c687c7317928ba15f0a07bce0786e4f45d91bfb09cbbc9375",
		"dir":       "sha256:058e3643d55cad679a555b58a8ce9550386ab9245b77028cee41b75917d22130",
		"one doc":   "sha256:ac62126a5acc714a76582b5a838616890943c6288c014ed6bdc6ffd1e8ca1082",
		"plain dir": "sha256:6d8f4980c9a31160595c6a346addf6483406093709d54f37a7aaa371647af9e9",
	}
	for _, st := range modelStores {
		for i, c := range models {
			if want[c.name] == "" {
				continue
			}
			d, err := st.open(t).PushModel(context.Background(), makeModel(t, t.TempDir(), i), meta)
			if err != nil {
				t.Fatal(err)
			}
			if d.Digest != want[c.name] {
				t.Errorf("%s: digest of %s = %s, want %s", st.name, c.name, d.Digest, want[c.name])
			}
		}
	}
}

func TestModelDeterministic(t *testing.T) {
	ctx := context.Background()
	for i, c := range models {
		t.Run(c.name, func(t *testing.T) {
			// Two copies made at different times, with different
			// permissions other than the exec bit.
			a := makeModel(t, t.TempDir(), i)
			b := makeModel(t, t.TempDir(), i)
			age(b)
			digests := map[string]bool{}
			for _, st := range modelStores {
				s := st.open(t)
				for _, p := range []string{a, a, b} {
					d, err := s.PushModel(ctx, p, meta)
					if err != nil {
						t.Fatal(err)
					}
					digests[d.Digest] = true
				}
			}
			if len(digests) != 1 {
				t.Errorf("got digests %v, want one", digests)
			}
			other := meta
			other.Version = "1.0.1"
			d, err := modelStores[0].open(t).PushModel(ctx, a, other)
			if err != nil {
				t.Fatal(err)
			}
			if digests[d.Digest] {
				t.Errorf("another version gave the same digest %s", d.Digest)
			}
		})
	}
}

// tarNames lists the entries of a tar.
func tarNames(t testing.TB, r io.Reader) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if !hdr.ModTime.Equal(time.Unix(0, 0)) || hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" {
			t.Errorf("entry %s has times or owners: %+v", hdr.Name, hdr)
		}
		names = append(names, hdr.Name)
	}
}

// TestModelLayers checks how a directory is split into layers: a large file
// alone, small files grouped by kind.
func TestModelLayers(t *testing.T) {
	ctx := context.Background()
	s := asLayout(newLayout(t))
	dir := filepath.Join(t.TempDir(), "model")
	writeTree(t, dir, modelTree)
	sparseFile(t, filepath.Join(dir, "weights", "big.safetensors"), testLargeFile)
	d, err := s.PushModel(ctx, dir, meta)
	if err != nil {
		t.Fatal(err)
	}
	m := readLayoutModel(t, s, d.Digest)
	type layer struct {
		mediaType, path string
		names           []string
	}
	want := []layer{
		{MediaTypeModelWeight, "", []string{"empty/", "latest", "model.onnx", "serve.sh", "weights/part-1.bin"}},
		{MediaTypeModelWeight, "weights/big.safetensors", []string{"weights/big.safetensors"}},
		{MediaTypeModelWeightConfig, "", []string{"config.json", "tokenizer.json", "tokenizer.model"}},
		{MediaTypeModelDoc, "", []string{"LICENSE", "README.md", "docs/usage.md"}},
	}
	var got []layer
	for _, l := range m.Layers {
		f, err := os.Open(s.blobPath(l.Digest))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, layer{l.MediaType, l.Annotations[AnnotationFilepath], tarNames(t, f)})
		f.Close()
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("layers\n%v\nwant\n%v", got, want)
	}
	dest := filepath.Join(t.TempDir(), "dest")
	if err := s.PullModel(ctx, d.Digest, meta.Name, dest); err != nil {
		t.Fatal(err)
	}
	if got, want := snapshot(t, dest), snapshot(t, dir); !equal(got, want) {
		t.Errorf("pulled\n%v\nwant\n%v", got, want)
	}
}

func readLayoutModel(t testing.TB, s layoutStore, digest string) *manifest {
	t.Helper()
	raw, err := os.ReadFile(s.blobPath(must(v1.NewHash(digest))))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseModelManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// countUploads wraps a registry's handler to count the requests and bytes
// that upload blobs.
type countUploads struct {
	requests, bytes atomic.Int64
}

type countingReader struct {
	r io.ReadCloser
	n *atomic.Int64
}

func (r countingReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.n.Add(int64(n))
	return n, err
}

func (r countingReader) Close() error { return r.r.Close() }

func (c *countUploads) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			if strings.Contains(r.URL.Path, "/blobs/uploads") {
				c.requests.Add(1)
				r.Body = countingReader{r.Body, &c.bytes}
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (c *countUploads) reset() (requests, bytes int64) {
	return c.requests.Swap(0), c.bytes.Swap(0)
}

func TestRemoteModelNoDuplicateUpload(t *testing.T) {
	ctx := context.Background()
	var c countUploads
	s := newRemote(t, c.wrap).(ModelStore)
	dir := filepath.Join(t.TempDir(), "model")
	writeTree(t, dir, modelTree)
	f, err := os.Create(filepath.Join(dir, "big.bin"))
	if err == nil {
		err = f.Truncate(testLargeFile)
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.PushModel(ctx, dir, meta)
	if err != nil {
		t.Fatal(err)
	}
	if n, b := c.reset(); n == 0 || b < testLargeFile {
		t.Fatalf("the first push made %d upload requests of %d bytes: the counter is broken", n, b)
	}
	second, err := s.PushModel(ctx, dir, meta)
	if err != nil {
		t.Fatal(err)
	}
	if n, b := c.reset(); n != 0 || b != 0 || second != first {
		t.Errorf("second push made %d upload requests of %d bytes and gave %v, want none and %v", n, b, second, first)
	}

	// A small file changed: its layer and the config go up, not the big file.
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"hidden": 9}`), 0o644); err != nil {
		t.Fatal(err)
	}
	third, err := s.PushModel(ctx, dir, meta)
	if err != nil {
		t.Fatal(err)
	}
	if n, b := c.reset(); n == 0 || b > 1<<20 || third.Digest == first.Digest {
		t.Errorf("push after a small change made %d upload requests of %d bytes, gave %s", n, b, third.Digest)
	}
}

// TestLayoutModelNoRewrite checks that a layout keeps the blobs it has.
func TestLayoutModelNoRewrite(t *testing.T) {
	ctx := context.Background()
	s := asLayout(newLayout(t))
	dir := filepath.Join(t.TempDir(), "model")
	writeTree(t, dir, modelTree)
	if _, err := s.PushModel(ctx, dir, meta); err != nil {
		t.Fatal(err)
	}
	before := blobFiles(t, s)
	if len(before) != 5 {
		t.Errorf("blobs after one push: %v, want a manifest, a config and 3 layers", before)
	}
	if _, err := s.PushModel(ctx, dir, meta); err != nil {
		t.Fatal(err)
	}
	sameBlobs(t, before, blobFiles(t, s))
}

func TestModelTags(t *testing.T) {
	ctx := context.Background()
	const missing = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	for _, st := range modelStores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t)
			if _, err := s.Resolve(ctx, "fraud", "1.0.0"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Resolve in an empty store = %v, want ErrNotFound", err)
			}
			src := makeModel(t, t.TempDir(), 0)
			v1meta, v2meta := meta, meta
			v2meta.Version = "2.0.0"
			d1, err := s.PushModel(ctx, src, v1meta)
			if err != nil {
				t.Fatal(err)
			}
			d2, err := s.PushModel(ctx, src, v2meta)
			if err != nil {
				t.Fatal(err)
			}
			// A model whose name is a prefix of the other's.
			d3, err := s.PushModel(ctx, src, ModelMeta{Name: "fraud-v2", Version: "1.0.0"})
			if err != nil {
				t.Fatal(err)
			}
			steps := []struct {
				model, tag, digest string
			}{
				{"fraud", "1.0.0", d1.Digest},
				{"fraud", "2.0.0", d2.Digest},
				{"fraud", "production", d1.Digest},
				{"fraud-v2", "production", d3.Digest},
				{"fraud", "production", d2.Digest}, // promotion
				{"fraud", "production", d2.Digest}, // again: nothing changes
			}
			for _, step := range steps {
				if err := s.Tag(ctx, step.model, step.tag, step.digest); err != nil {
					t.Fatal(err)
				}
			}
			for _, want := range []struct{ model, tag, digest string }{
				{"fraud", "1.0.0", d1.Digest},
				{"fraud", "2.0.0", d2.Digest},
				{"fraud", "production", d2.Digest},
				{"fraud-v2", "production", d3.Digest},
			} {
				if got, err := s.Resolve(ctx, want.model, want.tag); err != nil || got != want.digest {
					t.Errorf("Resolve(%s, %s) = %s, %v; want %s", want.model, want.tag, got, err, want.digest)
				}
			}
			if _, err := s.Resolve(ctx, "fraud", "staging"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "fraud:staging") {
				t.Errorf("Resolve(missing tag) = %v, want ErrNotFound naming it", err)
			}
			if err := s.Tag(ctx, "fraud", "staging", missing); !errors.Is(err, ErrNotFound) {
				t.Errorf("Tag(missing digest) = %v, want ErrNotFound", err)
			}
			for _, bad := range []struct{ model, tag, digest string }{
				{"Fraud", "1.0.0", d1.Digest},
				{"fraud", "-x", d1.Digest},
				{"fraud", "a:b", d1.Digest},
				{"fraud", "1.0.0", "sha256:nothex"},
			} {
				if err := s.Tag(ctx, bad.model, bad.tag, bad.digest); err == nil || errors.Is(err, ErrNotFound) {
					t.Errorf("Tag(%q, %q, %q) = %v, want an invalid argument", bad.model, bad.tag, bad.digest, err)
				}
			}
			// The pulled version is the tagged one.
			dest := filepath.Join(t.TempDir(), "dest")
			prod, _ := s.Resolve(ctx, "fraud", "production")
			if err := s.PullModel(ctx, prod, "fraud", dest); err != nil {
				t.Fatal(err)
			}
			if _, cfg := readModel(t, s, "fraud", prod); cfg.Descriptor.Version != "2.0.0" {
				t.Errorf("production is version %q", cfg.Descriptor.Version)
			}
		})
	}
}

// TestLayoutTagsInIndex checks that a layout's tags are in index.json at
// once, readable by another store and by go-containerregistry.
func TestLayoutTagsInIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openLayout(t, dir)
	d1, err := s.PushModel(ctx, makeModel(t, t.TempDir(), 0), meta)
	if err != nil {
		t.Fatal(err)
	}
	other := meta
	other.Version = "2.0.0"
	d2, err := s.PushModel(ctx, makeModel(t, t.TempDir(), 0), other)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []struct{ tag, digest string }{{"1.0.0", d1.Digest}, {"production", d1.Digest}, {"production", d2.Digest}} {
		if err := s.Tag(ctx, "fraud", tag.tag, tag.digest); err != nil {
			t.Fatal(err)
		}
	}
	// Not closed: another store, as another process, sees the tags.
	if got, err := openLayout(t, dir).Resolve(ctx, "fraud", "production"); err != nil || got != d2.Digest {
		t.Errorf("another store resolves production to %s, %v; want %s", got, err, d2.Digest)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]string{}
	for _, d := range im.Manifests {
		ref := d.Annotations[refNameAnnotation]
		if _, dup := refs[ref]; dup {
			t.Errorf("ref name %q listed twice", ref)
		}
		refs[ref] = d.Digest.String()
		if d.ArtifactType != ArtifactTypeModelManifest {
			t.Errorf("index entry %+v lacks the artifact type", d)
		}
		if _, err := ii.Image(d.Digest); err != nil {
			t.Error(err)
		}
	}
	want := map[string]string{"models/fraud:1.0.0": d1.Digest, "models/fraud:production": d2.Digest}
	if !equal(refs, want) {
		t.Errorf("index.json refs %v, want %v", refs, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRemoteModelSeenByCrane checks that a registry client finds a tagged
// version where zen says it is.
func TestRemoteModelSeenByCrane(t *testing.T) {
	ctx := context.Background()
	s := newRemote(t, nil)
	ms := s.(ModelStore)
	d, err := ms.PushModel(ctx, makeModel(t, t.TempDir(), 2), meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := ms.Tag(ctx, "fraud", "1.0.0", d.Digest); err != nil {
		t.Fatal(err)
	}
	ref := remoteOf(s).base + "/models/fraud:1.0.0"
	if got, err := crane.Digest(ref, crane.WithContext(ctx)); err != nil || got != d.Digest {
		t.Errorf("crane.Digest(%s) = %s, %v; want %s", ref, got, err, d.Digest)
	}
	head, err := remote.Head(must(name.NewTag(ref)))
	if err != nil || head.Digest.String() != d.Digest || head.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("remote.Head(%s) = %+v, %v; want %s", ref, head, err, d.Digest)
	}
	if got := ms.ModelRepository("fraud").Reference(); got != remoteOf(s).base+"/models/fraud" {
		t.Errorf("Reference() = %q", got)
	}
	// The artifacts' repository is left alone.
	if tags, err := crane.ListTags(remoteOf(s).base+"/artifacts", crane.WithContext(ctx)); err == nil && len(tags) != 0 {
		t.Errorf("artifacts repository has tags %v", tags)
	}
}

func TestRawRepository(t *testing.T) {
	ctx := context.Background()
	for _, st := range modelStores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t)
			d, err := s.PushModel(ctx, makeModel(t, t.TempDir(), 0), meta)
			if err != nil {
				t.Fatal(err)
			}
			for _, repo := range []RawRepository{s.ModelRepository("fraud"), s.ArtifactRepository()} {
				testRawRepository(t, s, repo, d)
			}
			if _, err := s.ModelRepository("Bad").Manifest(ctx, "v1"); err == nil || !strings.Contains(err.Error(), "invalid model name") {
				t.Errorf("Manifest of an invalid repository = %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// testRawRepository keeps a signature in repo as cosign does, for the
// model d of s.
func testRawRepository(t *testing.T, s ModelStore, repo RawRepository, d Descriptor) {
	ctx := context.Background()
	const missing = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	t.Run(path.Base(repo.Reference()), func(t *testing.T) {
		if !strings.HasSuffix(repo.Reference(), "/models/fraud") && !strings.HasSuffix(repo.Reference(), "/artifacts") {
			t.Errorf("Reference() = %q", repo.Reference())
		}

		// A signature as cosign keeps it: a blob, and a manifest
		// tagged after the signed digest.
		payload := []byte(`{"critical":{"identity":{"docker-reference":"` + repo.Reference() + `"},"image":{"docker-manifest-digest":"` + d.Digest + `"}}}`)
		pd := sha256Of(payload)
		if _, err := repo.Blob(ctx, pd.String()); !errors.Is(err, ErrNotFound) {
			t.Errorf("Blob before PutBlob = %v, want ErrNotFound", err)
		}
		if err := repo.PutBlob(ctx, pd.String(), payload); err != nil {
			t.Fatal(err)
		}
		if err := repo.PutBlob(ctx, pd.String(), payload); err != nil {
			t.Fatalf("PutBlob again: %v", err)
		}
		if got, err := repo.Blob(ctx, pd.String()); err != nil || !bytes.Equal(got, payload) {
			t.Errorf("Blob = %q, %v; want %q", got, err, payload)
		}
		if err := repo.PutBlob(ctx, missing, payload); !errors.Is(err, ErrDigestMismatch) {
			t.Errorf("PutBlob under another digest = %v, want ErrDigestMismatch", err)
		}
		if _, err := repo.Blob(ctx, missing); !errors.Is(err, ErrNotFound) {
			t.Errorf("Blob(missing) = %v, want ErrNotFound", err)
		}
		empty := []byte("{}")
		if err := repo.PutBlob(ctx, sha256Of(empty).String(), empty); err != nil {
			t.Fatal(err)
		}
		sig := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":%q,"size":%d,"annotations":{"dev.cosignproject.cosign/signature":"MEUC"}}]}`,
			sha256Of(empty), pd, len(payload))
		tag := "sha256-" + strings.TrimPrefix(d.Digest, "sha256:") + ".sig"
		if _, err := repo.Manifest(ctx, tag); !errors.Is(err, ErrNotFound) {
			t.Errorf("Manifest before PutManifest = %v, want ErrNotFound", err)
		}
		if err := repo.PutManifest(ctx, tag, sig); err != nil {
			t.Fatal(err)
		}
		if got, err := repo.Manifest(ctx, tag); err != nil || !bytes.Equal(got, sig) {
			t.Errorf("Manifest(%s) = %s, %v; want %s", tag, got, err, sig)
		}
		if got, err := repo.Manifest(ctx, sha256Of(sig).String()); err != nil || !bytes.Equal(got, sig) {
			t.Errorf("Manifest by digest = %s, %v; want %s", got, err, sig)
		}
		// A signature replaced: the tag moves.
		sig2 := bytes.Replace(sig, []byte("MEUC"), []byte("MEYC"), 1)
		if err := repo.PutManifest(ctx, tag, sig2); err != nil {
			t.Fatal(err)
		}
		if got, err := repo.Manifest(ctx, tag); err != nil || !bytes.Equal(got, sig2) {
			t.Errorf("Manifest(%s) after a new PutManifest = %s, %v", tag, got, err)
		}
		if got, err := s.Resolve(ctx, "fraud", tag); strings.HasSuffix(repo.Reference(), "/models/fraud") && (err != nil || got != sha256Of(sig2).String()) {
			t.Errorf("Resolve(%s) = %s, %v", tag, got, err)
		}
		if err := repo.PutManifest(ctx, missing, sig); !errors.Is(err, ErrDigestMismatch) {
			t.Errorf("PutManifest under another digest = %v, want ErrDigestMismatch", err)
		}
		if err := repo.PutManifest(ctx, "v1", []byte("not json")); err == nil {
			t.Error("PutManifest accepted a manifest that is not JSON")
		}
		// The model itself is still whole.
		if got, err := repo.Manifest(ctx, d.Digest); strings.HasSuffix(repo.Reference(), "/models/fraud") && (err != nil || sha256Of(got).String() != d.Digest) {
			t.Errorf("Manifest(%s) = %v", d.Digest, err)
		}
	})
}

// TestPullForeignModel pulls a model made as other ModelPack tools make
// them, one raw layer per file, put together with RawRepository.
func TestPullForeignModel(t *testing.T) {
	ctx := context.Background()
	for _, st := range modelStores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t)
			repo := s.ModelRepository("foreign")
			// put stores a model of a raw layer per file, or, for
			// "LINK -> TARGET", a tar layer of that symlink.
			put := func(files ...string) string {
				t.Helper()
				var layers []descriptor
				var ids []string
				for _, f := range files {
					b := []byte("content of " + f)
					d := descriptor{MediaType: MediaTypeModelWeightRaw, Annotations: map[string]string{AnnotationFilepath: f}}
					if strings.HasSuffix(f, ".md") {
						d.MediaType = MediaTypeModelDocRaw
					}
					if link, target, ok := strings.Cut(f, " -> "); ok {
						var buf bytes.Buffer
						tw := tar.NewWriter(&buf)
						if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: link, Linkname: target, Mode: 0o777}); err != nil {
							t.Fatal(err)
						}
						tw.Close()
						b, d = buf.Bytes(), descriptor{MediaType: MediaTypeModelWeight}
					}
					d.Digest, d.Size = sha256Of(b), int64(len(b))
					if err := repo.PutBlob(ctx, d.Digest.String(), b); err != nil {
						t.Fatal(err)
					}
					layers = append(layers, d)
					ids = append(ids, d.Digest.String())
				}
				cfg := must(json.Marshal(Model{Descriptor: ModelDescriptor{Name: "foreign", Version: "1"}, ModelFS: ModelFS{Type: "layers", DiffIDs: ids}}))
				if err := repo.PutBlob(ctx, sha256Of(cfg).String(), cfg); err != nil {
					t.Fatal(err)
				}
				raw := must(json.Marshal(manifest{
					SchemaVersion: 2,
					MediaType:     "application/vnd.oci.image.manifest.v1+json",
					ArtifactType:  ArtifactTypeModelManifest,
					Config:        descriptor{MediaType: MediaTypeModelConfig, Digest: sha256Of(cfg), Size: int64(len(cfg))},
					Layers:        layers,
				}))
				if err := repo.PutManifest(ctx, "v1", raw); err != nil {
					t.Fatal(err)
				}
				return sha256Of(raw).String()
			}
			digest := put("a/model.bin", "README.md")
			if got, err := s.Resolve(ctx, "foreign", "v1"); err != nil || got != digest {
				t.Fatalf("Resolve = %s, %v; want %s", got, err, digest)
			}
			dest := filepath.Join(t.TempDir(), "dest")
			if err := s.PullModel(ctx, digest, "foreign", dest); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"a/model.bin", "README.md"} {
				if b, err := os.ReadFile(filepath.Join(dest, f)); err != nil || string(b) != "content of "+f {
					t.Errorf("%s = %q, %v", f, b, err)
				}
			}
			// bad: a raw layer's path is held to the rules of a tar
			// entry's, by the same code.
			for _, bad := range []struct {
				files []string
				want  string
			}{
				{[]string{"../escaped", "b"}, `raw layer file path "../escaped": path leaves the destination`},
				{[]string{"a/../../escaped", "b"}, `raw layer file path "a/../../escaped": path leaves the destination`},
				{[]string{"/etc/passwd", "b"}, `raw layer file path "/etc/passwd": path leaves the destination`},
				{[]string{".", "b"}, `raw layer file path ".": path leaves the destination`},
				{[]string{"a/..", "b"}, `raw layer file path "a/..": path leaves the destination`},
				{[]string{"", "b"}, `raw layer without a org.cncf.model.filepath annotation`},
				{[]string{"b", "./b"}, `raw layer file path "./b": open `},
				{[]string{"a", "a/b"}, `raw layer file path "a/b": parent a is not a directory`},
				{[]string{"a/b", "a"}, `raw layer file path "a": open `},
				{[]string{"up -> ..", "up/escaped"}, `raw layer file path "up/escaped": parent up is not a directory`},
				{[]string{"in -> b", "b", "in"}, `raw layer file path "in": open `},
				{[]string{"out -> /etc/passwd", "b"}, `tar entry "out": symlink to /etc/passwd: leads outside the directory`},
			} {
				digest := put(bad.files...)
				parent := t.TempDir()
				err := s.PullModel(ctx, digest, "foreign", filepath.Join(parent, "dest"))
				if err == nil || !strings.Contains(err.Error(), bad.want) {
					t.Errorf("PullModel of layers %q = %v, want %q", bad.files, err, bad.want)
				}
				if left, _ := os.ReadDir(parent); len(left) != 0 {
					t.Errorf("PullModel left %v behind", left)
				}
			}
			// A file's declared size is checked against the room left.
			fakeDisk(t, 1<<30+10, 100<<30)
			digest = put("a/model.bin", "README.md")
			if err := s.PullModel(ctx, digest, "foreign", filepath.Join(t.TempDir(), "dest")); err == nil || !strings.Contains(err.Error(), `raw layer file path "a/model.bin": 22 B would not fit`) {
				t.Errorf("PullModel of raw layers larger than the room left = %v", err)
			}
		})
	}
}

func TestPullModelCorrupt(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		model int
		blob  func(m *manifest) v1.Hash
		want  string
	}{
		{"raw layer", 0, func(m *manifest) v1.Hash { return m.Layers[0].Digest }, "content does not match its digest"},
		{"tar layer", 2, func(m *manifest) v1.Hash { return m.Layers[1].Digest }, "content does not match its digest"},
		{"config", 2, func(m *manifest) v1.Hash { return m.Config.Digest }, "config: content does not match its digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := asLayout(newLayout(t))
			d, err := s.PushModel(ctx, makeModel(t, t.TempDir(), tt.model), meta)
			if err != nil {
				t.Fatal(err)
			}
			p := s.blobPath(tt.blob(readLayoutModel(t, s, d.Digest)))
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, flip(len(b)/2)(b), 0o644); err != nil {
				t.Fatal(err)
			}
			parent := t.TempDir()
			err = s.PullModel(ctx, d.Digest, meta.Name, filepath.Join(parent, "dest"))
			if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PullModel = %v, want ErrDigestMismatch with %q", err, tt.want)
			}
			if left, _ := os.ReadDir(parent); len(left) != 0 {
				t.Errorf("PullModel left %v behind", left)
			}
		})
	}

	// An artifact is not a model.
	s := newLayout(t).(ModelStore)
	d, err := s.Push(ctx, makeContent(t, t.TempDir(), 0), "model")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PullModel(ctx, d.Digest, "fraud", filepath.Join(t.TempDir(), "dest")); err == nil || !strings.Contains(err.Error(), "not a ModelPack model") {
		t.Errorf("PullModel of an artifact = %v", err)
	}
}

func TestPushModelRejects(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := makeModel(t, dir, 0)
	emptyDir := filepath.Join(dir, "empty")
	os.Mkdir(emptyDir, 0o755)
	tests := []struct {
		name string
		path string
		meta ModelMeta
		want string
	}{
		{"no name", src, ModelMeta{Version: "1"}, `invalid model name ""`},
		{"upper case", src, ModelMeta{Name: "Fraud", Version: "1"}, `invalid model name "Fraud"`},
		{"slash", src, ModelMeta{Name: "a/b", Version: "1"}, `invalid model name "a/b"`},
		{"trailing dash", src, ModelMeta{Name: "fraud-", Version: "1"}, `invalid model name "fraud-"`},
		{"two dots", src, ModelMeta{Name: "a..b", Version: "1"}, `invalid model name "a..b"`},
		{"no version", src, ModelMeta{Name: "fraud"}, "model version has no name"},
		{"empty dir", emptyDir, meta, "model directory " + emptyDir + " is empty"},
		{"missing", filepath.Join(dir, "missing"), meta, "no such file or directory"},
		{"link outside", "", meta, "symlink l -> ../x: leads outside the directory"},
	}
	for _, st := range modelStores {
		for _, tt := range tests {
			t.Run(st.name+"/"+tt.name, func(t *testing.T) {
				p := tt.path
				if p == "" {
					p = filepath.Join(t.TempDir(), "model")
					writeTree(t, p, map[string]string{"a": "A", "l -> ../x": ""})
				}
				s := st.open(t)
				_, err := s.PushModel(ctx, p, tt.meta)
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "artifact store "+s.String()) {
					t.Errorf("PushModel = %v, want an error with %q", err, tt.want)
				}
				if ls, ok := s.(*store).b.(*layoutBackend); ok {
					if left, _ := filepath.Glob(filepath.Join(ls.blobDir(), ".zen-tmp-*")); len(left) != 0 {
						t.Errorf("temporary files left: %v", left)
					}
				}
			})
		}
	}
}

// TestLayoutSignatureTagsPending checks that a layout's signature tags are
// seen by their store at once, by other stores after Close, and that a
// store sees tags another store wrote since it last looked.
func TestLayoutSignatureTagsPending(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := openLayout(t, dir), openLayout(t, dir)
	d, err := a.PushModel(ctx, makeModel(t, t.TempDir(), 0), meta)
	if err != nil {
		t.Fatal(err)
	}
	put := func(s ModelStore, tag string, body string) []byte {
		t.Helper()
		raw := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + d.Digest + `","size":1},"layers":[],"annotations":{"n":"` + body + `"}}`)
		if err := s.ArtifactRepository().PutManifest(ctx, tag, raw); err != nil {
			t.Fatal(err)
		}
		return raw
	}
	got := func(s ModelStore, tag string) ([]byte, error) {
		return s.ArtifactRepository().Manifest(ctx, tag)
	}
	one := put(a, "sha256-1.sig", "one")
	if m, err := got(a, "sha256-1.sig"); err != nil || !bytes.Equal(m, one) {
		t.Errorf("the writing store reads %s, %v", m, err)
	}
	if _, err := got(b, "sha256-1.sig"); !errors.Is(err, ErrNotFound) {
		t.Errorf("another store, before Close: %v, want ErrNotFound", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if m, err := got(b, "sha256-1.sig"); err != nil || !bytes.Equal(m, one) {
		t.Errorf("another store, after Close: %s, %v", m, err)
	}
	// b has read index.json; a moves the tag and writes it again.
	two := put(a, "sha256-1.sig", "two")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if m, err := got(b, "sha256-1.sig"); err != nil || !bytes.Equal(m, two) {
		t.Errorf("another store, after the tag moved: %s, %v", m, err)
	}
	// A model tag writes index.json at once, pending signature tags too.
	put(a, "sha256-2.sig", "three")
	if err := a.Tag(ctx, "fraud", "1.0.0", d.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := got(b, "sha256-2.sig"); err != nil {
		t.Errorf("after Tag, another store: %v", err)
	}
	idx, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(idx, []byte(`"artifacts:sha256-1.sig"`)); n != 1 {
		t.Errorf("index.json lists artifacts:sha256-1.sig %d times, want once:\n%s", n, idx)
	}
}

// TestModelRawOrTar checks when a directory is one raw layer per file: only
// when raw layers hold it whole, and it is not to be gzipped.
func TestModelRawOrTar(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		tree     map[string]string
		compress bool
		raw      bool
	}{
		{"plain files", map[string]string{"m.bin": "w", "sub/c.json": "{}"}, false, true},
		{"gzipped", map[string]string{"m.bin": "w", "sub/c.json": "{}"}, true, false},
		{"an executable", map[string]string{"m.bin": "w", "serve.sh*": "#!/bin/sh\n"}, false, false},
		{"an empty directory", map[string]string{"m.bin": "w", "logs/": ""}, false, false},
		{"a symlink", map[string]string{"m.bin": "w", "latest -> m.bin": ""}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := asLayout(newLayout(t))
			dir := filepath.Join(t.TempDir(), "model")
			writeTree(t, dir, tt.tree)
			m := meta
			m.Compress = tt.compress
			d, err := s.PushModel(ctx, dir, m)
			if err != nil {
				t.Fatal(err)
			}
			got := readLayoutModel(t, s, d.Digest)
			for _, l := range got.Layers {
				if raw, _, _ := modelLayerType(l.MediaType); raw != tt.raw {
					t.Errorf("layer %s, want raw %v", l.MediaType, tt.raw)
				}
			}
			dest := filepath.Join(t.TempDir(), "dest")
			if err := s.PullModel(ctx, d.Digest, meta.Name, dest); err != nil {
				t.Fatal(err)
			}
			if got, want := snapshot(t, dest), snapshot(t, dir); !equal(got, want) {
				t.Errorf("pulled\n%v\nwant\n%v", got, want)
			}
		})
	}
}

// TestModelNamesAreZenNames checks that every name zen's schema takes for
// a model is a model name the registry takes (an OCI repository path
// component), and that the registry still opens names older zens took.
func TestModelNamesAreZenNames(t *testing.T) {
	for _, name := range []string{"a", "fraud-detector", "rf_model", "m2", "a-b-c_d1", strings.Repeat("ab-", 42) + "a"} {
		if !schema.ValidName(name) {
			t.Fatalf("%q is not a zen name", name)
		}
		if err := checkModelName(name); err != nil {
			t.Errorf("zen takes model %q, the registry refuses it: %v", name, err)
		}
	}
	for _, name := range []string{"3d-unet", "fraud.detector", "a__b", "a--b"} {
		if err := checkModelName(name); err != nil {
			t.Errorf("older zens took model %q, the registry refuses it: %v", name, err)
		}
	}
}
