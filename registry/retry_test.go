package registry

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/zen-dev/zen/internal/faultproxy"
)

// newFaultyRemote opens a remote store on an in-process registry behind a
// fault-injecting proxy.
func newFaultyRemote(t *testing.T) (*store, *faultproxy.Proxy) {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	p, err := faultproxy.Start(strings.TrimPrefix(srv.URL, "http://"), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	s, err := OpenRemote(p.Addr()+"/ml", testOptions...)
	if err != nil {
		t.Fatal(err)
	}
	return s.(*store), p
}

// TestRemoteRetries checks that a push and a pull, of an artifact and of a
// model, go through two faults of each kind in a row: requests that failed
// are retried by go-containerregistry, answers that broke off by zen.
func TestRemoteRetries(t *testing.T) {
	type rule = faultproxy.Rule
	for _, tt := range []struct {
		name string
		rule rule
	}{
		{"drop blob upload", rule{Fault: faultproxy.Drop, Method: "PATCH"}},
		{"reset blob commit", rule{Fault: faultproxy.Reset, Method: "PUT", Path: "/blobs/uploads/"}},
		{"503 upload start, Retry-After", rule{Fault: faultproxy.Status, Status: 503, RetryAfter: "1", Method: "POST"}},
		{"502 manifest put", rule{Fault: faultproxy.Status, Status: 502, Method: "PUT", Path: "/manifests/"}},
		{"answer to manifest put lost", rule{Fault: faultproxy.Drop, Forward: true, Method: "PUT", Path: "/manifests/"}},
		{"500 blob get", rule{Fault: faultproxy.Status, Status: 500, Method: "GET", Path: "/blobs/sha256:"}},
		{"reset blob get", rule{Fault: faultproxy.Reset, Method: "GET", Path: "/blobs/sha256:"}},
		{"truncated blob", rule{Fault: faultproxy.Truncate, Path: "/blobs/sha256:"}},
		{"truncated manifest", rule{Fault: faultproxy.Truncate, Path: "/manifests/sha256:"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, p := newFaultyRemote(t)
			src := makeContent(t, t.TempDir(), 4) // a folder
			model := filepath.Join(t.TempDir(), "model")
			writeTree(t, model, modelTree)

			tt.rule.Times = 2
			p.SetRules(tt.rule)
			d, err := s.Push(ctx, src, "data")
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := s.Has(ctx, d.Digest); !ok || err != nil {
				t.Fatalf("Has = %v, %v", ok, err)
			}
			dest := filepath.Join(t.TempDir(), "dest")
			if err := s.Pull(ctx, d.Digest, dest); err != nil {
				t.Fatal(err)
			}
			if got, want := snapshot(t, dest), snapshot(t, src); !equal(got, want) {
				t.Errorf("pulled\n%v\nwant\n%v", got, want)
			}
			if n := p.Injected(); n != 2 {
				t.Errorf("artifact: %d faults injected, want 2", n)
			}

			p.SetRules(tt.rule)
			md, err := s.PushModel(ctx, model, meta)
			if err != nil {
				t.Fatal(err)
			}
			mdest := filepath.Join(t.TempDir(), "model")
			if err := s.PullModel(ctx, md.Digest, meta.Name, mdest); err != nil {
				t.Fatal(err)
			}
			if got, want := snapshot(t, mdest), snapshot(t, model); !equal(got, want) {
				t.Errorf("pulled model\n%v\nwant\n%v", got, want)
			}
			if n := p.Injected(); n != 4 {
				t.Errorf("model: %d faults injected in all, want 4", n)
			}
		})
	}
}

// TestRemoteGivesUp checks that a fault that does not pass fails the push
// or pull after the store's five tries, having waited out its backoff
// (testOptions': 15 ms), saying what failed, and that a pull leaves
// nothing at its destination.
func TestRemoteGivesUp(t *testing.T) {
	type rule = faultproxy.Rule
	for _, tt := range []struct {
		name string
		rule rule
		pull bool
		// want is what the error says, of the artifact a, through the
		// proxy at addr.
		want  func(a *packed, addr string) string
		isErr error
	}{
		{"drop blob upload", rule{Fault: faultproxy.Drop, Method: "PATCH"}, false, func(a *packed, addr string) string {
			return "upload blob " + a.m.Config.Digest.String() + ": the registry closed the connection without answering PATCH http://" + addr + "/v2/ml/artifacts/blobs/uploads/"
		}, io.EOF},
		{"503 manifest put", rule{Fault: faultproxy.Status, Status: 503, Method: "PUT", Path: "/manifests/"}, false, func(a *packed, addr string) string {
			return "put manifest " + a.digest.String() + ": PUT http://" + addr + "/v2/ml/artifacts/manifests/" + a.digest.Hex + ": unexpected status code 503"
		}, nil},
		{"truncated blob", rule{Fault: faultproxy.Truncate, Path: "/blobs/sha256:"}, true, func(a *packed, addr string) string {
			return "artifact " + a.digest.String() + ": read content: the registry's answer broke off: unexpected EOF"
		}, errBrokenOff},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, p := newFaultyRemote(t)
			src := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(src, []byte(tt.name), 0o644); err != nil {
				t.Fatal(err)
			}
			a, err := pack(src, "data", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.pull {
				if _, err := s.Push(ctx, src, "data"); err != nil {
					t.Fatal(err)
				}
			}
			p.SetRules(tt.rule)
			dest := filepath.Join(t.TempDir(), "dest")
			begin := time.Now()
			if tt.pull {
				err = s.Pull(ctx, a.digest.String(), dest)
			} else {
				_, err = s.Push(ctx, src, "data")
			}
			took := time.Since(begin)
			want := tt.want(a, p.Addr())
			if err == nil || !strings.HasPrefix(err.Error(), "artifact store oci "+p.Addr()+"/ml: ") || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "_state") {
				t.Errorf("got %v\nwant an error naming the store, with %q", err, want)
			}
			if tt.isErr != nil && !errors.Is(err, tt.isErr) {
				t.Errorf("error does not wrap %v", tt.isErr)
			}
			if _, err := os.Lstat(dest); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the failed pull left %s: %v", dest, err)
			}
			if took < 13*time.Millisecond || took > 10*time.Second {
				t.Errorf("gave up after %v, want 15 ms of backoff", took)
			}
			if n := p.Injected(); n != 5 {
				t.Errorf("%d faults injected, want five tries", n)
			}
		})
	}
}
