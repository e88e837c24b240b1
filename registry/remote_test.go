package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestRemoteCheck(t *testing.T) {
	if err := newRemote(t, nil).Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRemoteNoDuplicateUpload(t *testing.T) {
	ctx := context.Background()
	var uploads atomic.Int64
	s := newRemote(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead && strings.Contains(r.URL.Path, "/blobs/uploads") {
				uploads.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	})
	for i := range contents {
		src := makeContent(t, t.TempDir(), i)
		uploads.Store(0)
		first, err := s.Push(ctx, src, "model")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && uploads.Load() == 0 {
			t.Fatal("the first push uploaded nothing: the counter is broken")
		}
		uploads.Store(0)
		second, err := s.Push(ctx, src, "model")
		if err != nil {
			t.Fatal(err)
		}
		if n := uploads.Load(); n != 0 || second != first {
			t.Errorf("%s: second push made %d upload requests and gave %v, want none and %v", contents[i].name, n, second, first)
		}
	}
}

func TestRemoteTag(t *testing.T) {
	ctx := context.Background()
	s := newRemote(t, nil)
	d, err := s.Push(ctx, makeContent(t, t.TempDir(), 4), "model")
	if err != nil {
		t.Fatal(err)
	}
	tag := remoteOf(s).repo.Tag(strings.TrimPrefix(d.Digest, "sha256:"))
	got, err := remote.Head(tag)
	if err != nil || got.Digest.String() != d.Digest || got.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("Head(%s) = %+v, %v; want the manifest %s", tag, got, err, d.Digest)
	}
}

// flipWriter inverts the first byte written.
type flipWriter struct {
	http.ResponseWriter
	done bool
}

func (w *flipWriter) Write(b []byte) (int, error) {
	if !w.done && len(b) > 0 {
		b = bytes.Clone(b)
		b[0] ^= 0xff
		w.done = true
	}
	return w.ResponseWriter.Write(b)
}

func TestRemotePullCorrupt(t *testing.T) {
	ctx := context.Background()
	var corrupt atomic.Bool
	s := newRemote(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if corrupt.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
				w = &flipWriter{ResponseWriter: w}
			}
			h.ServeHTTP(w, r)
		})
	})
	for _, i := range []int{0, 4} {
		d, err := s.Push(ctx, makeContent(t, t.TempDir(), i), "model")
		if err != nil {
			t.Fatal(err)
		}
		corrupt.Store(true)
		parent := t.TempDir()
		err = s.Pull(ctx, d.Digest, filepath.Join(parent, "dest"))
		corrupt.Store(false)
		want := fmt.Sprintf("artifact %s: content does not match its digest", d.Digest)
		if !errors.Is(err, ErrDigestMismatch) || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("%s: Pull = %v, want ErrDigestMismatch ending %q", contents[i].name, err, want)
		}
	}
}

// TestRemoteUnreachable checks that a registry that is not there is said to
// be so, quickly.
func TestRemoteUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s, err := OpenRemote(addr+"/ml", testOptions...)
	if err != nil {
		t.Fatal(err)
	}
	src := makeContent(t, t.TempDir(), 0)
	const digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	tests := []struct {
		name string
		do   func(context.Context) error
		want string
	}{
		{"check", s.Check, "artifact store oci " + addr + "/ml: cannot reach registry: dial tcp " + addr + ": connect: connection refused"},
		{"push", func(ctx context.Context) error { _, err := s.Push(ctx, src, "model"); return err }, "cannot reach registry: dial tcp"},
		{"has", func(ctx context.Context) error { _, err := s.Has(ctx, digest); return err }, "cannot reach registry: dial tcp"},
		{"pull", func(ctx context.Context) error { return s.Pull(ctx, digest, filepath.Join(t.TempDir(), "x")) }, "cannot reach registry: dial tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := tt.do(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "artifact store oci "+addr+"/ml: ") {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v to fail", d)
			}
		})
	}
}

func TestOpenRemoteInvalid(t *testing.T) {
	if _, err := OpenRemote("127.0.0.1:5000/ML:latest"); err == nil {
		t.Error("OpenRemote accepted an invalid repository")
	}
}
