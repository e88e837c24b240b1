package registry

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/zen-dev/zen/internal/testregistry"
)

func TestResolveImage(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	want := host + "/base@" + testregistry.PushImage(t, host+"/base:1")
	ctx := context.Background()
	for _, ref := range []string{host + "/base:1", want} {
		got, err := ResolveImage(ctx, ref)
		if err != nil || got != want {
			t.Errorf("ResolveImage(%s) = %q, %v; want %q", ref, got, err, want)
		}
	}
	_, err := ResolveImage(ctx, host+"/base:2")
	if !errors.Is(err, ErrImageNotFound) {
		t.Errorf("missing tag: %v, want ErrImageNotFound", err)
	}
	_, err = ResolveImage(ctx, host+"/base@sha256:"+strings.Repeat("0", 64))
	if !errors.Is(err, ErrImageNotFound) {
		t.Errorf("missing digest: %v, want ErrImageNotFound", err)
	}
	if _, err := ResolveImage(ctx, "Bad Name"); err == nil || !strings.Contains(err.Error(), "not an image reference") {
		t.Errorf("bad reference: %v", err)
	}
	if _, err := ResolveImage(ctx, "127.0.0.1:1/base:1"); err == nil || !strings.Contains(err.Error(), "cannot reach registry") {
		t.Errorf("unreachable: %v", err)
	}
}

func TestPlainHTTPImage(t *testing.T) {
	for ref, want := range map[string]bool{
		"127.0.0.1:5000/base:1":                                 true,
		"localhost:5000/base@sha256:" + strings.Repeat("a", 64): true,
		"python:3.11":       false,
		"ghcr.io/org/img:1": false,
	} {
		if got := PlainHTTPImage(ref); got != want {
			t.Errorf("PlainHTTPImage(%s) = %v, want %v", ref, got, want)
		}
	}
}
