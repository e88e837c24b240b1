package faulttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zen-dev/zen/cmd/zen/cli"
	"github.com/zen-dev/zen/internal/faultproxy"
	"github.com/zen-dev/zen/internal/testregistry"
	"github.com/zen-dev/zen/registry"
)

// runZen, set to 1, makes the test binary run zen: the tests exec
// themselves as zen.
const runZen = "ZEN_FAULTTEST_RUN_ZEN"

// giveUp bounds how long a push or pull may take to fail on a fault that
// does not pass; retries take 7.5 s.
const giveUp = 30 * time.Second

// tally counts faults over all tests, for ZEN_STRESS_REPORT.
var tally struct{ injected, recovered atomic.Int64 }

func TestMain(m *testing.M) {
	if os.Getenv(runZen) == "1" {
		os.Exit(cli.Main())
	}
	code := m.Run()
	if p := os.Getenv("ZEN_STRESS_REPORT"); p != "" {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err == nil {
			_, err = fmt.Fprintf(f, "faults injected %d\nfaults recovered %d\n", tally.injected.Load(), tally.recovered.Load())
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "ZEN_STRESS_REPORT:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// rounds is how many times each test goes through its faults.
func rounds() int {
	if os.Getenv("ZEN_STRESS") == "1" {
		return 10
	}
	return 1
}

// scenario counts the faults p injects while do runs. do reports whether
// zen came through them as it should (the operation succeeded, or failed
// cleanly); then they count as recovered.
func scenario(t *testing.T, p *faultproxy.Proxy, do func() bool) {
	t.Helper()
	before := p.Injected()
	ok := do()
	n := int64(p.Injected() - before)
	if n == 0 {
		t.Error("no fault was injected")
	}
	tally.injected.Add(n)
	if ok && !t.Failed() {
		tally.recovered.Add(n)
	}
}

// startRegistry runs docker-registry for the test and returns its
// host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("docker-registry is not installed; .ci/run installs it (apt-get install docker-registry)")
		}
		t.Skip("docker-registry is not installed (apt-get install docker-registry)")
	}
	addr, stop, err := testregistry.Start(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr
}

func startProxy(t *testing.T, upstream string, seed uint64) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(upstream, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func openRemote(t *testing.T, repository string) registry.Store {
	t.Helper()
	s, err := registry.OpenRemote(repository)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// makeTree writes a folder of random content, new to the registry, and
// returns its path.
func makeTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	for _, f := range []struct {
		name string
		size int
	}{{"a.bin", 70_000}, {"sub/b.txt", 100}} {
		p := filepath.Join(dir, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(rand.Text()+strings.Repeat("x", f.size)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// sameTree fails the test unless the folders hold the same files.
func sameTree(t *testing.T, got, want string) {
	t.Helper()
	for _, name := range []string{"a.bin", "sub/b.txt"} {
		g, err := os.ReadFile(filepath.Join(got, name))
		if err != nil {
			t.Fatal(err)
		}
		w, err := os.ReadFile(filepath.Join(want, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(g, w) {
			t.Errorf("%s: pulled content differs", name)
		}
	}
}

// digestOf is the digest an artifact of the folder has in any store.
func digestOf(t *testing.T, dir string) string {
	t.Helper()
	s, err := registry.OpenLayout(filepath.Join(t.TempDir(), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := s.Push(context.Background(), dir, "data")
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest
}

// absent fails the test if a failed pull left something at p.
func absent(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed pull left %s (%v)", p, err)
	}
}

type rule = faultproxy.Rule

const (
	drop        = faultproxy.Drop
	reset       = faultproxy.Reset
	delay       = faultproxy.Delay
	status      = faultproxy.Status
	truncate    = faultproxy.Truncate
	wrongDigest = faultproxy.WrongDigest
)

// transient are faults that pass: each fires a few times, then requests
// go through. Between them they hit every request of a push and a pull.
var transient = []struct {
	name string
	rule rule
}{
	{"drop blob upload", rule{Fault: drop, Method: "PATCH"}},
	{"reset blob commit", rule{Fault: reset, Method: "PUT", Path: "/blobs/uploads/"}},
	{"503 upload start, Retry-After", rule{Fault: status, Status: 503, RetryAfter: "1", Method: "POST"}},
	{"500 blob lookup", rule{Fault: status, Status: 500, Method: "HEAD", Path: "/blobs/"}},
	{"502 manifest put", rule{Fault: status, Status: 502, Method: "PUT", Path: "/manifests/"}},
	{"answer to manifest put lost", rule{Fault: drop, Forward: true, Method: "PUT", Path: "/manifests/"}},
	{"slow blob upload", rule{Fault: delay, Delay: 300 * time.Millisecond, Method: "PATCH"}},
	{"reset manifest get", rule{Fault: reset, Method: "GET", Path: "/manifests/"}},
	{"truncated manifest", rule{Fault: truncate, Path: "/manifests/"}},
	{"503 blob get", rule{Fault: status, Status: 503, Method: "GET", Path: "/blobs/sha256:"}},
	{"reset blob get", rule{Fault: reset, Method: "GET", Path: "/blobs/sha256:"}},
	{"truncated blob", rule{Fault: truncate, Path: "/blobs/sha256:"}},
	{"slow connection", rule{Fault: delay, Delay: 300 * time.Millisecond, Conn: true}},
}

// TestRegistryFaultsStore drives registry.Store through a proxy: transient
// faults are retried and the push, lookup and pull succeed; faults that
// do not pass fail in bounded time, naming the store and what failed, and
// leave no artifact in the registry and no file at the destination; a
// blob served with other content is refused.
//
// Subtests that run at once push to repositories of their own. Their
// artifacts share a config blob, and docker-registry (distribution 2.8)
// rewrites a repository's link file of a blob in place on every upload
// of it: a manifest put that reads the link while another upload of the
// same blob has just truncated it fails with DIGEST_INVALID and
// MANIFEST_BLOB_UNKNOWN, though every blob is stored whole (distribution
// writes the file atomically since its PR 4624). In one repository, the
// subtests failed so now and then with no fault injected at all.
func TestRegistryFaultsStore(t *testing.T) {
	t.Parallel()
	addr := startRegistry(t)
	for round := range rounds() {
		rng := mrand.New(mrand.NewPCG(uint64(round), 1))
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			t.Run("transient", func(t *testing.T) {
				var wg sync.WaitGroup
				for i, tt := range transient {
					r := tt.rule
					// Two in a row, then from one to four in later
					// rounds: never the five tries a request gets.
					r.Times = 2
					if round > 0 {
						r.Times = 1 + rng.IntN(4)
					}
					wg.Go(func() {
						t.Run(tt.name, func(t *testing.T) { transientStore(t, addr, uint64(round*100+i), r) })
					})
				}
				wg.Wait()
			})
			t.Run("persistent", func(t *testing.T) { persistentStore(t, addr) })
			t.Run("wrong digest", func(t *testing.T) { wrongDigestStore(t, addr) })
		})
	}
}

// repository is a subtest's repository of its own, kind and n naming it:
// see TestRegistryFaultsStore.
func repository(addr, kind string, n uint64) string {
	return fmt.Sprintf("%s/ml/%s%d", addr, kind, n)
}

func transientStore(t *testing.T, addr string, seed uint64, r rule) {
	ctx := context.Background()
	p := startProxy(t, addr, seed)
	s := openRemote(t, repository(p.Addr(), "transient", seed))
	src := makeTree(t)
	p.SetRules(r)
	scenario(t, p, func() bool {
		d, err := s.Push(ctx, src, "data")
		if err != nil {
			t.Fatalf("push: %v", err)
		}
		if ok, err := s.Has(ctx, d.Digest); !ok || err != nil {
			t.Fatalf("has = %v, %v", ok, err)
		}
		dest := filepath.Join(t.TempDir(), "dest")
		if err := s.Pull(ctx, d.Digest, dest); err != nil {
			t.Fatalf("pull: %v", err)
		}
		sameTree(t, dest, src)
		return true
	})
}

func persistentStore(t *testing.T, addr string) {
	// Subtests at once, not t.Parallel: they mostly wait out backoffs,
	// and -parallel would run only GOMAXPROCS of them at a time.
	var wg sync.WaitGroup
	for i, tt := range []struct {
		name string
		rule rule
		pull bool
		want string // in the error, after the store's name
	}{
		{"503 blob upload", rule{Fault: status, Status: 503, Method: "PATCH"}, false, "upload blob sha256:"},
		{"drop blob upload", rule{Fault: drop, Method: "PATCH"}, false, "the registry closed the connection without answering PATCH"},
		{"reset manifest put", rule{Fault: reset, Method: "PUT", Path: "/manifests/"}, false, "put manifest sha256:"},
		{"502 manifest get", rule{Fault: status, Status: 502, Method: "GET", Path: "/manifests/"}, true, "502 Bad Gateway"},
		{"truncated blob", rule{Fault: truncate, Path: "/blobs/sha256:"}, true, "read content: the registry's answer broke off"},
	} {
		wg.Go(func() {
			t.Run(tt.name, func(t *testing.T) {
				ctx := context.Background()
				p := startProxy(t, addr, uint64(i))
				s := openRemote(t, repository(p.Addr(), "persistent", uint64(i)))
				direct := openRemote(t, repository(addr, "persistent", uint64(i)))
				src := makeTree(t)
				digest := digestOf(t, src)
				if tt.pull {
					if _, err := s.Push(ctx, src, "data"); err != nil {
						t.Fatal(err)
					}
				}
				p.SetRules(tt.rule)
				dest := filepath.Join(t.TempDir(), "dest")
				scenario(t, p, func() bool {
					begin := time.Now()
					var err error
					if tt.pull {
						err = s.Pull(ctx, digest, dest)
					} else {
						_, err = s.Push(ctx, src, "data")
					}
					took := time.Since(begin)
					t.Logf("failed after %v: %v", took.Round(time.Millisecond), err)
					prefix := "artifact store oci " + repository(p.Addr(), "persistent", uint64(i)) + ": "
					if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
						t.Errorf("got %v\nwant an error starting %q, with %q", err, prefix, tt.want)
					}
					if took > giveUp {
						t.Errorf("took %v to fail", took)
					}
					if tt.pull {
						absent(t, dest)
					} else if ok, err := direct.Has(ctx, digest); ok || err != nil {
						t.Errorf("after the failed push the registry has the artifact: %v, %v", ok, err)
					}
					return true
				})
				// The fault gone, the same push or pull goes through.
				p.SetRules()
				if _, err := s.Push(ctx, src, "data"); err != nil {
					t.Fatal(err)
				}
				if err := s.Pull(ctx, digest, dest); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
	wg.Wait()
}

func wrongDigestStore(t *testing.T, addr string) {
	ctx := context.Background()
	p := startProxy(t, addr, 1)
	s := openRemote(t, p.Addr()+"/ml")
	src := makeTree(t)
	d, err := s.Push(ctx, src, "data")
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "dest")
	for _, tt := range []struct {
		path string
		is   error  // the error wraps it
		want string // or says it
	}{
		{"/blobs/sha256:", registry.ErrDigestMismatch, "artifact " + d.Digest + ": content does not match its digest"},
		{"/manifests/sha256:", nil, "does not match requested digest"},
	} {
		p.SetRules(rule{Fault: wrongDigest, Path: tt.path})
		scenario(t, p, func() bool {
			err := s.Pull(ctx, d.Digest, dest)
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("wrong content at %s: pull = %v, want %q", tt.path, err, tt.want)
			}
			absent(t, dest)
			return true
		})
	}
	p.SetRules()
	if err := s.Pull(ctx, d.Digest, dest); err != nil {
		t.Fatal(err)
	}
	sameTree(t, dest, src)
}
