package registry

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// testLargeFile is the size from which a file of a model directory gets a
// tar layer of its own in the tests' stores: zen's 64 MiB would have the
// tests hash, tar and upload 64 MiB for each large file.
const testLargeFile = 1 << 20

// testOptions are the options of the tests' stores: retries 1, 2, 4 and
// 8 ms apart instead of 0.5 to 4 s, as many, and testLargeFile.
var testOptions = []Option{
	WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 5}),
	WithLargeFile(testLargeFile),
}

// layoutStore is a layout store and its backend, for tests that look at
// the files.
type layoutStore struct {
	*store
	*layoutBackend
}

func (s layoutStore) String() string { return s.store.String() }

// asLayout returns the layout store s with its backend.
func asLayout(s Store) layoutStore {
	st := s.(*store)
	return layoutStore{st, st.b.(*layoutBackend)}
}

// remoteOf returns the backend of the remote store s.
func remoteOf(s Store) *remoteBackend { return s.(*store).b.(*remoteBackend) }

// newLayout opens a layout store in a new temporary directory.
func newLayout(t testing.TB) Store {
	t.Helper()
	s, err := OpenLayout(filepath.Join(t.TempDir(), "store"), testOptions...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newRemote opens a remote store on an in-process registry, its handler
// wrapped by wrap if not nil.
func newRemote(t testing.TB, wrap func(http.Handler) http.Handler) Store {
	t.Helper()
	h := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenRemote(u.Host+"/ml", testOptions...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var stores = []struct {
	name string
	open func(testing.TB) Store
}{
	{"layout", newLayout},
	{"remote", func(t testing.TB) Store { return newRemote(t, nil) }},
}

// writeTree makes a tree under dir: "name/" is a directory, "name*" an
// executable file, "name -> target" a symlink, anything else a file
// holding the value.
func writeTree(t testing.TB, dir string, tree map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range tree {
		var err error
		switch link, target, isLink := strings.Cut(name, " -> "); {
		case isLink:
			p := filepath.Join(dir, link)
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = os.Symlink(target, p)
			}
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(filepath.Join(dir, name), 0o755)
		default:
			mode := fs.FileMode(0o644)
			if exe, ok := strings.CutSuffix(name, "*"); ok {
				name, mode = exe, 0o755
			}
			p := filepath.Join(dir, name)
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = os.WriteFile(p, []byte(data), mode)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot describes the tree at root, or the file root is, for comparison.
func snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			got[rel] = "dir"
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[rel] = "-> " + target
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = fmt.Sprintf("file exec=%t %.40q sha256:%x", fi.Mode()&0o100 != 0, b, sha256.Sum256(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// The contents pushed in round trips, determinism and concurrency tests.
var contents = []struct {
	name string
	file string            // a file's content, if tree is nil
	tree map[string]string // a directory
}{
	{name: "file", file: "hello\n"},
	{name: "empty file", file: ""},
	{name: "binary file", file: string(randomBytes(3<<20+7, 1))},
	{name: "empty dir", tree: map[string]string{}},
	{name: "nested dir", tree: map[string]string{
		"a.txt":                 "A",
		"run.sh*":               "#!/bin/sh\necho hi\n",
		"empty/":                "",
		"sub/b.txt":             "B",
		"sub/deep/c.bin":        string(randomBytes(100_000, 2)),
		"sub/deep/empty/":       "",
		"link -> sub/b.txt":     "",
		"dirlink -> sub/deep":   "",
		"sub/up -> ../a.txt":    "",
		"dangling -> not/there": "",
		strings.Repeat("long-name-", 15) + "/" + strings.Repeat("x", 120): "long",
	}},
}

// makeContent writes a content of the table under dir and returns its path.
func makeContent(t testing.TB, dir string, i int) string {
	t.Helper()
	c := contents[i]
	p := filepath.Join(dir, "out")
	if c.tree != nil {
		writeTree(t, p, c.tree)
		return p
	}
	if err := os.WriteFile(p, []byte(c.file), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, st := range stores {
		for i, c := range contents {
			t.Run(st.name+"/"+c.name, func(t *testing.T) {
				s := st.open(t)
				src := makeContent(t, t.TempDir(), i)
				d, err := s.Push(ctx, src, "model")
				if err != nil {
					t.Fatal(err)
				}
				wantType := fileMediaType
				if c.tree != nil {
					wantType = dirMediaType
				}
				if d.MediaType != wantType || !strings.HasPrefix(d.Digest, "sha256:") || len(d.Digest) != 71 {
					t.Errorf("Push = %+v, want a sha256 digest and media type %s", d, wantType)
				}
				if c.tree == nil && d.Size != int64(len(c.file)) {
					t.Errorf("Push size = %d, want %d", d.Size, len(c.file))
				}
				if ok, err := s.Has(ctx, d.Digest); !ok || err != nil {
					t.Errorf("Has after Push = %v, %v; want true", ok, err)
				}
				dest := filepath.Join(t.TempDir(), "new", "dest")
				if err := s.Pull(ctx, d.Digest, dest); err != nil {
					t.Fatal(err)
				}
				if got, want := snapshot(t, dest), snapshot(t, src); !equal(got, want) {
					t.Errorf("pulled\n%v\nwant\n%v", got, want)
				}
				if err := s.Pull(ctx, d.Digest, dest); !errors.Is(err, fs.ErrExist) {
					t.Errorf("Pull to an existing dest: %v, want fs.ErrExist", err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestGolden pins the artifact format: if this digest changes, every stored
// output is orphaned.
func TestGolden(t *testing.T) {
	const want = "sha256:7d0d40b12b9c42af07a03d56042f8d8564b7ede094385b517e3351e067c276ba"
	for _, st := range stores {
		s := st.open(t)
		d, err := s.Push(context.Background(), makeContent(t, t.TempDir(), 0), "model")
		if err != nil {
			t.Fatal(err)
		}
		if d.Digest != want {
			t.Errorf("%s: digest of %q = %s, want %s", st.name, contents[0].file, d.Digest, want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	ctx := context.Background()
	for i, c := range contents {
		t.Run(c.name, func(t *testing.T) {
			// Two copies made at different times, with different
			// permissions other than the exec bit.
			a := makeContent(t, t.TempDir(), i)
			b := makeContent(t, t.TempDir(), i)
			age(b)
			digests := map[string]bool{}
			for _, st := range stores {
				s := st.open(t)
				for _, p := range []string{a, a, b} {
					d, err := s.Push(ctx, p, "model")
					if err != nil {
						t.Fatal(err)
					}
					digests[d.Digest] = true
				}
			}
			if len(digests) != 1 {
				t.Errorf("got digests %v, want one", digests)
			}
			d, err := newLayout(t).Push(ctx, a, "dataset")
			if err != nil {
				t.Fatal(err)
			}
			if digests[d.Digest] {
				t.Errorf("another type gave the same digest %s", d.Digest)
			}
		})
	}
}

func TestHas(t *testing.T) {
	ctx := context.Background()
	const missing = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t)
			if ok, err := s.Has(ctx, missing); ok || err != nil {
				t.Errorf("Has(missing) = %v, %v; want false", ok, err)
			}
			if _, err := s.Has(ctx, "sha256:nothex"); err == nil {
				t.Error("Has(invalid digest) did not fail")
			}
			err := s.Pull(ctx, missing, filepath.Join(t.TempDir(), "x"))
			if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), s.String()) {
				t.Errorf("Pull(missing) = %v, want ErrNotFound naming the digest and the store", err)
			}
		})
	}
}

// age gives the files under dir old times and permissions other than the
// exec bit, as a copy made elsewhere would have.
func age(dir string) {
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink == 0 {
			if fi, _ := d.Info(); fi != nil && fi.Mode().IsRegular() {
				os.Chmod(p, fi.Mode()&0o100|0o600)
			}
			err = os.Chtimes(p, old, old)
		}
		return err
	})
}

// sameBlobs fails unless every blob file of after is the very file it was
// in before: nothing stored twice, nothing left behind.
func sameBlobs(t *testing.T, before, after map[string]os.FileInfo) {
	t.Helper()
	for name, fi := range after {
		if !os.SameFile(fi, before[name]) {
			t.Errorf("blob %s was written again, or left behind", name)
		}
	}
}
