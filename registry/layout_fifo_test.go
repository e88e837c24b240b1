package registry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// within fails the test unless f returns within a few seconds: a FIFO
// opened for reading blocks until a writer comes, which none does here.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s blocked", what)
		return nil
	}
}

// TestLayoutRefusesFIFOs plants FIFOs where a layout's blobs, index.json and
// oci-layout are: each is refused as not a regular file, at once.
func TestLayoutRefusesFIFOs(t *testing.T) {
	ctx := context.Background()
	fifo := func(t *testing.T, p string) {
		t.Helper()
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	push := func(t *testing.T) (layoutStore, string) {
		s := openLayout(t, filepath.Join(t.TempDir(), "store"))
		src := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(src, []byte("content"), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := s.Push(ctx, src, "file")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return s, d.Digest
	}

	t.Run("manifest", func(t *testing.T) {
		s, digest := push(t)
		h, _ := parseDigest(digest)
		fifo(t, s.blobPath(h))
		err := within(t, "Pull", func() error { return s.Pull(ctx, digest, filepath.Join(t.TempDir(), "dest")) })
		if !errors.Is(err, errNotRegular) || !strings.Contains(err.Error(), "blob "+digest+": not a regular file") {
			t.Errorf("Pull = %v", err)
		}
	})
	t.Run("layer", func(t *testing.T) {
		s, digest := push(t)
		m := readLayoutManifest(t, s, digest)
		fifo(t, s.blobPath(m.Layers[0].Digest))
		err := within(t, "Pull", func() error { return s.Pull(ctx, digest, filepath.Join(t.TempDir(), "dest")) })
		if !errors.Is(err, errNotRegular) {
			t.Errorf("Pull = %v", err)
		}
	})
	t.Run("index.json", func(t *testing.T) {
		s, _ := push(t)
		fifo(t, filepath.Join(s.root, "index.json"))
		fresh := openLayout(t, s.root)
		err := within(t, "Resolve", func() error { _, err := fresh.Resolve(ctx, "m", "v1"); return err })
		if !errors.Is(err, errNotRegular) || !strings.Contains(err.Error(), "index.json: not a regular file") {
			t.Errorf("Resolve = %v", err)
		}
	})
	t.Run("oci-layout", func(t *testing.T) {
		s, _ := push(t)
		fifo(t, filepath.Join(s.root, "oci-layout"))
		fresh := openLayout(t, s.root)
		err := within(t, "Check", func() error { return fresh.Check(ctx) })
		if !errors.Is(err, errNotRegular) || !strings.Contains(err.Error(), "oci-layout: not a regular file") {
			t.Errorf("Check = %v", err)
		}
	})
}
