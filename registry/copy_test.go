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
)

// TestCopy copies an artifact and a model version from a layout to a
// registry and to another layout: the digests are kept, a dry run writes
// nothing, and a second copy has nothing to do.
func TestCopy(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	remote, err := OpenRemote(strings.TrimPrefix(srv.URL, "http://") + "/ml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src, err := OpenLayout(filepath.Join(dir, "src"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "data")
	if err := os.WriteFile(file, []byte("some data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	art, err := src.Push(ctx, file, "file")
	if err != nil {
		t.Fatal(err)
	}
	ms := src.(ModelStore)
	mv, err := ms.PushModel(ctx, file, ModelMeta{Name: "fraud", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := OpenLayout(filepath.Join(dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dst := range []Store{remote, other} {
		t.Run(dst.String(), func(t *testing.T) {
			for _, c := range []struct{ model, digest, tag string }{
				{"", art.Digest, strings.TrimPrefix(art.Digest, "sha256:")},
				{"fraud", mv.Digest, "1.0.0"},
				{"fraud", mv.Digest, "production"},
			} {
				plan, err := Copy(ctx, src, dst, c.model, c.digest, c.tag, true)
				if err != nil {
					t.Fatal(err)
				}
				if plan.Empty() {
					t.Fatalf("dry run of %s:%s = %+v, want something to copy", c.model, c.tag, plan)
				}
				if again, _ := Copy(ctx, src, dst, c.model, c.digest, c.tag, true); again.Manifests != plan.Manifests || again.Blobs != plan.Blobs {
					t.Fatalf("a dry run wrote: %+v, then %+v", plan, again)
				}
				if _, err := Copy(ctx, src, dst, c.model, c.digest, c.tag, false); err != nil {
					t.Fatal(err)
				}
				if again, err := Copy(ctx, src, dst, c.model, c.digest, c.tag, false); err != nil || !again.Empty() {
					t.Fatalf("second copy = %+v, %v; want nothing to do", again, err)
				}
			}
			if ok, err := dst.Has(ctx, art.Digest); err != nil || !ok {
				t.Fatalf("Has(%s) = %v, %v after the copy", art.Digest, ok, err)
			}
			got, err := dst.(ModelStore).Resolve(ctx, "fraud", "production")
			if err != nil || got != mv.Digest {
				t.Fatalf("production = %s, %v; want %s", got, err, mv.Digest)
			}
			if err := dst.(ModelStore).PullModel(ctx, mv.Digest, "fraud", filepath.Join(t.TempDir(), "m")); err != nil {
				t.Fatal(err)
			}
			if err := dst.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	// A digest the source lacks is an error naming it.
	missing := "sha256:" + strings.Repeat("0", 64)
	if _, err := Copy(ctx, src, other, "", missing, "", true); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("copy of a missing digest: %v", err)
	}
}
