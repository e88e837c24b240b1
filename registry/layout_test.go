package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func openLayout(t testing.TB, dir string) layoutStore {
	t.Helper()
	s, err := OpenLayout(dir, testOptions...)
	if err != nil {
		t.Fatal(err)
	}
	return asLayout(s)
}

// blobFiles maps the blob files of a layout to their file info.
func blobFiles(t testing.TB, s layoutStore) map[string]fs.FileInfo {
	t.Helper()
	entries, err := os.ReadDir(s.blobDir())
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]fs.FileInfo{}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = fi
	}
	return files
}

func TestLayoutCheck(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a", "store")
	s := openLayout(t, dir)
	if s.String() != "oci-layout "+dir {
		t.Errorf("String() = %q", s)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if m, err := ii.IndexManifest(); err != nil || len(m.Manifests) != 0 {
		t.Errorf("new layout's index: %v, %v; want empty", m, err)
	}
	if len(blobFiles(t, s)) != 0 {
		t.Errorf("Check left files in blobs: %v", blobFiles(t, s))
	}

	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "oci-layout"), []byte(`{"imageLayoutVersion":"9"}`), 0o644)
	if err := openLayout(t, bad).Check(ctx); err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
		t.Errorf("Check on a foreign layout: %v", err)
	}

	if os.Geteuid() != 0 {
		ro := t.TempDir()
		os.Chmod(ro, 0o500)
		err := openLayout(t, filepath.Join(ro, "store")).Check(ctx)
		if err == nil || !strings.HasPrefix(err.Error(), "artifact store oci-layout "+ro) {
			t.Errorf("Check in a read-only directory: %v", err)
		}
	}
}

// TestLayoutNoRewrite checks that blobs already stored are left alone.
func TestLayoutNoRewrite(t *testing.T) {
	ctx := context.Background()
	s := openLayout(t, t.TempDir())
	src := makeContent(t, t.TempDir(), 4)
	if _, err := s.Push(ctx, src, "model"); err != nil {
		t.Fatal(err)
	}
	before := blobFiles(t, s)
	if len(before) != 3 {
		t.Errorf("blobs after one push: %v, want manifest, config and layer", before)
	}
	if _, err := s.Push(ctx, src, "model"); err != nil {
		t.Fatal(err)
	}
	sameBlobs(t, before, blobFiles(t, s))
}

func TestLayoutHasMissingBlob(t *testing.T) {
	ctx := context.Background()
	for _, blob := range []string{"manifest", "config", "layer"} {
		t.Run(blob, func(t *testing.T) {
			s := openLayout(t, t.TempDir())
			d, err := s.Push(ctx, makeContent(t, t.TempDir(), 4), "model")
			if err != nil {
				t.Fatal(err)
			}
			m := readLayoutManifest(t, s, d.Digest)
			h := map[string]v1.Hash{"manifest": must(v1.NewHash(d.Digest)), "config": m.Config.Digest, "layer": m.Layers[0].Digest}[blob]
			if err := os.Remove(s.blobPath(h)); err != nil {
				t.Fatal(err)
			}
			if ok, err := s.Has(ctx, d.Digest); ok || err != nil {
				t.Errorf("Has without its %s = %v, %v; want false", blob, ok, err)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func readLayoutManifest(t testing.TB, s layoutStore, digest string) *manifest {
	t.Helper()
	raw, err := os.ReadFile(s.blobPath(must(v1.NewHash(digest))))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLayoutPullCorrupt(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		content int // index in contents
		corrupt func(b []byte) []byte
		blob    string // "layer" or "manifest"
	}{
		{"file byte flipped", 2, flip(1000), "layer"},
		{"file longer", 0, func(b []byte) []byte { return append(b, 'x') }, "layer"},
		{"file shorter", 2, func(b []byte) []byte { return b[:len(b)-1] }, "layer"},
		{"tar content byte flipped", 4, flipIn("A"), "layer"},
		{"tar header byte flipped", 4, flip(0), "layer"},
		{"manifest changed", 0, func(b []byte) []byte { return bytes.Replace(b, []byte(`"size"`), []byte(` "size"`), 1) }, "manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openLayout(t, t.TempDir())
			d, err := s.Push(ctx, makeContent(t, t.TempDir(), tt.content), "model")
			if err != nil {
				t.Fatal(err)
			}
			h := must(v1.NewHash(d.Digest))
			if tt.blob == "layer" {
				h = readLayoutManifest(t, s, d.Digest).Layers[0].Digest
			}
			b, err := os.ReadFile(s.blobPath(h))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.blobPath(h), tt.corrupt(b), 0o644); err != nil {
				t.Fatal(err)
			}
			parent := t.TempDir()
			err = s.Pull(ctx, d.Digest, filepath.Join(parent, "dest"))
			want := fmt.Sprintf("artifact %s: content does not match its digest", d.Digest)
			if tt.blob == "manifest" {
				want = fmt.Sprintf("artifact %s: manifest: content does not match its digest", d.Digest)
			}
			if !errors.Is(err, ErrDigestMismatch) || !strings.HasSuffix(err.Error(), want) {
				t.Errorf("Pull = %v, want ErrDigestMismatch ending %q", err, want)
			}
			if left, _ := os.ReadDir(parent); len(left) != 0 {
				t.Errorf("Pull left %v behind", left)
			}
		})
	}
}

// flip inverts the byte at i.
func flip(i int) func([]byte) []byte {
	return func(b []byte) []byte {
		b[i] ^= 0xff
		return b
	}
}

// flipIn changes the first occurrence of s.
func flipIn(s string) func([]byte) []byte {
	return func(b []byte) []byte { return flip(bytes.Index(b, []byte(s)))(b) }
}

// putArtifact stores a layer by hand, as a crafted or foreign artifact would
// be, and returns the artifact's digest.
func putArtifact(t testing.TB, s layoutStore, layer []byte, mediaType string) string {
	t.Helper()
	if err := s.init(); err != nil {
		t.Fatal(err)
	}
	cfg := []byte(`{"type":"model","format":"dir"}`)
	m := manifest{
		SchemaVersion: 2,
		MediaType:     string(types.OCIManifestSchema1),
		ArtifactType:  artifactType,
		Config:        descriptor{MediaType: configMediaType, Digest: sha256Of(cfg), Size: int64(len(cfg))},
		Layers:        []descriptor{{MediaType: mediaType, Digest: sha256Of(layer), Size: int64(len(layer))}},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{layer, cfg, raw} {
		if err := s.writeBytes(descriptor{Digest: sha256Of(b), Size: int64(len(b))}, b); err != nil {
			t.Fatal(err)
		}
	}
	return sha256Of(raw).String()
}

// tarOf makes a tar of entries "name" (a file), "name/" (a directory),
// "name -> target" (a symlink) and "name => target" (a hard link).
func tarOf(t testing.TB, entries ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e, Mode: 0o644, Typeflag: tar.TypeReg, Size: 1}
		if name, target, ok := strings.Cut(e, " -> "); ok {
			hdr = &tar.Header{Name: name, Linkname: target, Mode: 0o777, Typeflag: tar.TypeSymlink}
		} else if name, target, ok := strings.Cut(e, " => "); ok {
			hdr = &tar.Header{Name: name, Linkname: target, Mode: 0o644, Typeflag: tar.TypeLink}
		} else if strings.HasSuffix(e, "/") {
			hdr = &tar.Header{Name: e, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			tw.Write([]byte("x"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLayoutPullUnsafeTar(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		entries []string
		want    string
	}{
		{"parent path", []string{"../escaped"}, `tar entry "../escaped": path leaves the destination`},
		{"inner parent path", []string{"a/", "a/../../escaped"}, `path leaves the destination`},
		{"absolute path", []string{"/tmp/escaped"}, `path leaves the destination`},
		{"absolute link", []string{"l -> /etc/passwd"}, `symlink to /etc/passwd: leads outside the directory`},
		{"parent link", []string{"sub/", "sub/l -> ../../escaped"}, `leads outside the directory`},
		{"link through a link", []string{"l -> up/..", "up -> ."}, `tar entry "l": symlink to up/..: leads outside the directory`},
		{"write through a link", []string{"d -> .", "d/escaped"}, `tar entry "d/escaped": parent d is not a directory`},
		{"hard link", []string{"a", "b => a"}, `unsupported type`},
		{"duplicate file", []string{"a", "a"}, `file exists`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openLayout(t, t.TempDir())
			digest := putArtifact(t, s, tarOf(t, tt.entries...), dirMediaType)
			parent := t.TempDir()
			err := s.Pull(ctx, digest, filepath.Join(parent, "dest"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Pull = %v, want an error with %q", err, tt.want)
			}
			if left, _ := os.ReadDir(parent); len(left) != 0 {
				t.Errorf("Pull left %v behind", left)
			}
		})
	}

	// A safe tar made by another tool, with "./" and no directory entries.
	s := openLayout(t, t.TempDir())
	digest := putArtifact(t, s, tarOf(t, "./", "./a/b/c", "a/l -> b/c"), dirMediaType)
	dest := filepath.Join(t.TempDir(), "dest")
	if err := s.Pull(ctx, digest, dest); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{".": "dir", "a": "dir", "a/b": "dir", "a/b/c": `file exec=false "x" sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881`, "a/l": "-> b/c"}
	if got := snapshot(t, dest); !equal(got, want) {
		t.Errorf("pulled %v, want %v", got, want)
	}
}

func TestLayoutConcurrent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// Two stores on one directory stand for two processes.
	a, b := openLayout(t, dir), openLayout(t, dir)
	// An entry someone else put there is kept.
	if err := a.Check(ctx); err != nil {
		t.Fatal(err)
	}
	foreign := putArtifact(t, a, []byte("foreign"), fileMediaType)
	index := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":1,"annotations":{%q:"zzz-foreign"}}]}`, foreign, refNameAnnotation)
	os.WriteFile(filepath.Join(dir, "index.json"), []byte(index), 0o644)

	src := t.TempDir()
	const n = 24
	var wg sync.WaitGroup
	digests := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		p := filepath.Join(src, fmt.Sprint(i))
		// Every content twice, pushed to either store.
		os.WriteFile(p, []byte(fmt.Sprint(i/2)), 0o644)
		s := []layoutStore{a, b}[i%2]
		wg.Go(func() {
			var d Descriptor
			d, errs[i] = s.Push(ctx, p, "model")
			digests[i] = d.Digest
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i, s := range []layoutStore{a, b} {
		wg.Go(func() { errs[i] = s.Close() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{foreign: true}
	for _, d := range digests {
		want[d] = true
	}
	if len(want) != n/2+1 || len(m.Manifests) != len(want) {
		t.Fatalf("index has %d entries for %d artifacts: %v", len(m.Manifests), len(want), m.Manifests)
	}
	for i, d := range m.Manifests {
		if !want[d.Digest.String()] {
			t.Errorf("index lists %s, not pushed", d.Digest)
		}
		if i > 0 && m.Manifests[i-1].Annotations[refNameAnnotation] >= d.Annotations[refNameAnnotation] {
			t.Errorf("index not sorted by ref name at %d", i)
		}
		if d.Digest.String() != foreign && (d.Annotations[refNameAnnotation] != d.Digest.Hex || d.ArtifactType != artifactType) {
			t.Errorf("index entry %+v lacks its ref name or artifact type", d)
		}
		if rc, err := p.Blob(d.Digest); err != nil {
			t.Error(err)
		} else {
			rc.Close()
		}
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*", "*", ".zen-tmp-*")); len(files) != 0 {
		t.Errorf("temporary files left: %v", files)
	}
}

func BenchmarkPushLayout(b *testing.B) {
	const size = 64 << 20
	src := filepath.Join(b.TempDir(), "model.bin")
	if err := os.WriteFile(src, randomBytes(size, 3), 0o644); err != nil {
		b.Fatal(err)
	}
	root := b.TempDir()
	b.SetBytes(size)
	for b.Loop() {
		dir := filepath.Join(root, "store")
		s := openLayout(b, dir)
		if _, err := s.Push(context.Background(), src, "model"); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}
