package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeDisk makes checkRoom see a disk of size bytes with free bytes free,
// for the rest of the test.
func fakeDisk(t *testing.T, free, size int64) {
	old := diskSpace
	diskSpace = func(string) (int64, int64, error) { return free, size, nil }
	t.Cleanup(func() { diskSpace = old })
}

// bombTar is a tar whose one header declares a file of size bytes, with
// only the header written: what counts is that zen refuses the file at
// its header, before writing any of it.
func bombTar(t *testing.T, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros.bin", Mode: 0o644, Typeflag: tar.TypeReg, Size: size}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes() // not closed: the content is missing
}

// sparseTar is a tar of one sparse file in GNU's PAX format 1.0, as GNU tar
// writes it: a few hundred bytes that archive/tar presents as a regular
// file of size bytes. archive/tar does not write these, so the PAX header
// is written as a regular file whose type is changed to 'x' afterwards.
func sparseTar(t *testing.T, size int64) []byte {
	t.Helper()
	var recs string
	for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}, {"GNU.sparse.name", "big"}, {"GNU.sparse.realsize", fmt.Sprint(size)}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 1
		for len(fmt.Sprint(n))+len(rec) != n {
			n++
		}
		recs += fmt.Sprint(n) + rec
	}
	sparseMap := fmt.Sprintf("1\n%d\n1\n", size-1)
	data := sparseMap + strings.Repeat("\x00", 512-len(sparseMap)) + "x"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []struct{ name, data string }{{"PaxHeaders/big", recs}, {"GNUSparseFile.0/big", data}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.data)), Format: tar.FormatUSTAR}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// The first header becomes a PAX extended header: type 'x', and its
	// checksum again.
	b[156] = tar.TypeXHeader
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func TestSparseTar(t *testing.T) {
	// The helper makes what GNU tar makes: archive/tar reads it as a
	// regular file of the full size, which is the danger.
	tr := tar.NewReader(bytes.NewReader(sparseTar(t, 1<<40)))
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Name != "big" || hdr.Typeflag != tar.TypeReg || hdr.Size != 1<<40 || !sparse(hdr) {
		t.Fatalf("read %q type %q size %d, want big, a regular file of 1 TiB, sparse", hdr.Name, hdr.Typeflag, hdr.Size)
	}
}

func TestPullRefusesBombs(t *testing.T) {
	ctx := context.Background()
	fakeDisk(t, 10<<30, 100<<30) // 10 GiB free of 100: 9 GiB may be written
	tests := []struct {
		name      string
		layer     []byte
		mediaType string
		want      string
	}{
		{"sparse file", sparseTar(t, 1<<40), dirMediaType, `tar entry "big": sparse files are not supported`},
		{"file larger than the disk", bombTar(t, 1<<50), dirMediaType, `tar entry "zeros.bin": 1.0 PiB would not fit: the destination's disk has 10.0 GiB free, and a pull leaves 1.0 GiB of it free`},
		{"file eating the reserve", bombTar(t, 9<<30+1), dirMediaType, `tar entry "zeros.bin": 9.0 GiB would not fit`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openLayout(t, t.TempDir())
			digest := putArtifact(t, s, tt.layer, tt.mediaType)
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

	// A file artifact is checked by its declared size, before it is read.
	fakeDisk(t, 1<<30+100, 100<<30)
	s := openLayout(t, t.TempDir())
	digest := putArtifact(t, s, bytes.Repeat([]byte("x"), 200), fileMediaType)
	parent := t.TempDir()
	err := s.Pull(ctx, digest, filepath.Join(parent, "dest"))
	if err == nil || !strings.Contains(err.Error(), "200 B would not fit") {
		t.Errorf("Pull of a file larger than the room left = %v", err)
	}
	if left, _ := os.ReadDir(parent); len(left) != 0 {
		t.Errorf("Pull left %v behind", left)
	}
	// Every file is checked against what is left: a small disk keeps a
	// twentieth of its size, and what fits is written.
	fakeDisk(t, 1000, 2000)
	if err := s.Pull(ctx, digest, filepath.Join(parent, "dest")); err != nil {
		t.Errorf("Pull of a file that fits = %v", err)
	}
}

// TestPullModelGzipBomb pulls a gzipped model layer of a few bytes whose tar
// declares a file of a petabyte: refused at the header, nothing written.
func TestPullModelGzipBomb(t *testing.T) {
	ctx := context.Background()
	fakeDisk(t, 10<<30, 100<<30)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	tarBytes := bombTar(t, 1<<50)
	zw.Write(tarBytes)
	zw.Close()
	for _, st := range modelStores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t)
			repo := s.ModelRepository("bomb")
			layer := descriptor{MediaType: MediaTypeModelWeightGzip, Digest: sha256Of(gz.Bytes()), Size: int64(gz.Len())}
			cfg := must(json.Marshal(Model{Descriptor: ModelDescriptor{Name: "bomb", Version: "1"}, ModelFS: ModelFS{Type: "layers", DiffIDs: []string{sha256Of(tarBytes).String()}}}))
			for _, b := range [][]byte{gz.Bytes(), cfg} {
				if err := repo.PutBlob(ctx, sha256Of(b).String(), b); err != nil {
					t.Fatal(err)
				}
			}
			raw := must(json.Marshal(manifest{
				SchemaVersion: 2,
				MediaType:     "application/vnd.oci.image.manifest.v1+json",
				ArtifactType:  ArtifactTypeModelManifest,
				Config:        descriptor{MediaType: MediaTypeModelConfig, Digest: sha256Of(cfg), Size: int64(len(cfg))},
				Layers:        []descriptor{layer},
			}))
			if err := repo.PutManifest(ctx, "1", raw); err != nil {
				t.Fatal(err)
			}
			parent := t.TempDir()
			err := s.PullModel(ctx, sha256Of(raw).String(), "bomb", filepath.Join(parent, "dest"))
			if err == nil || !strings.Contains(err.Error(), `tar entry "zeros.bin": 1.0 PiB would not fit`) {
				t.Errorf("PullModel = %v, want the bomb refused", err)
			}
			if left, _ := os.ReadDir(parent); len(left) != 0 {
				t.Errorf("PullModel left %v behind", left)
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 1 << 30: "1.0 GiB", 1 << 50: "1.0 PiB", 1<<63 - 1: "8.0 EiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}
