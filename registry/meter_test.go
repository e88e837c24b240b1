package registry

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/zen-dev/zen/progress"
)

// TestMeter pushes a file and a folder to a layout and to a registry,
// pulls them back and copies them, with a progress.Meter on the context:
// the bytes hashed, pushed and pulled are those of the blobs, and blobs
// the store holds already are not counted again.
func TestMeter(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "data")
	content := strings.Repeat("0123456789", 100_000)
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "folder")
	if err := os.MkdirAll(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(folder, "a"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	layout, err := OpenLayout(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	remote, err := OpenRemote(strings.TrimPrefix(srv.URL, "http://") + "/ml")
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(content))
	for _, s := range []Store{layout, remote} {
		t.Run(s.String(), func(t *testing.T) {
			var m progress.Meter
			ctx := progress.NewContext(context.Background(), &m)
			d, err := s.Push(ctx, file, "data")
			if err != nil {
				t.Fatal(err)
			}
			b := m.Bytes()
			// The file's bytes, and the small config blob.
			if b.Hashed != n || b.Pushed < n || b.Pushed > n+200 || b.ToPush != b.Pushed || b.Pulled != 0 {
				t.Errorf("push of %d bytes counted %+v", n, b)
			}
			pushed := b.Pushed
			dd, err := s.Push(ctx, folder, "data")
			if err != nil {
				t.Fatal(err)
			}
			b = m.Bytes()
			// The tar of the folder: its file and headers.
			if tar := dd.Size; b.Hashed != n+tar || b.Pushed < pushed+tar || b.ToPush != b.Pushed {
				t.Errorf("push of a %d-byte tar counted %+v", tar, b)
			}
			// Pushed again: hashed, but nothing to push.
			before := m.Bytes()
			if _, err := s.Push(ctx, file, "data"); err != nil {
				t.Fatal(err)
			}
			if b := m.Bytes(); b.Pushed != before.Pushed || b.Hashed != before.Hashed+n {
				t.Errorf("a second push counted %+v after %+v", b, before)
			}
			if err := s.Pull(ctx, d.Digest, filepath.Join(t.TempDir(), "out")); err != nil {
				t.Fatal(err)
			}
			if b := m.Bytes(); b.Pulled != n {
				t.Errorf("pull of %d bytes counted %d", n, b.Pulled)
			}
			// No meter: nothing counted, and the push works as ever.
			if _, err := s.Push(context.Background(), file, "data"); err != nil {
				t.Fatal(err)
			}
		})
	}
	// A copy counts what it writes to the destination as pushed.
	var m progress.Meter
	ctx := progress.NewContext(context.Background(), &m)
	other, err := OpenLayout(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := layout.Push(context.Background(), file, "data")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Copy(ctx, layout, other, "", d.Digest, "", false); err != nil {
		t.Fatal(err)
	}
	if b := m.Bytes(); b.Pushed < n || b.Pushed > n+200 || b.Pulled != 0 {
		t.Errorf("copy of %d bytes counted %+v", n, b)
	}
}
