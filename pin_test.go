package zen

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/zen-dev/zen/internal/testregistry"
)

// pinCUE has comments, odd spacing, a template two steps share, a
// reference, and a reference already pinned; REG is the registry.
const pinCUE = `package zen

// the images, pinned by zen pin
_ref: "REG/other:2"
_t: {
	image:    "REG/base:1"   // aligned on purpose
	run: ["true"]
}
pipelines: p: steps: {
	a: _t
	b:   _t & {timeout:"1m"}
	c: {image: _ref, run: ["true"]}
	d: {image:"REG/base:1"	, run: ["true"]} // inline
	e: {
		image: "REG/base:1@DIGEST"
		run: ["true"]
	}
}
`

// pushImage pushes a random image as REG/repo:tag and returns its digest.
func pushImage(t *testing.T, reg, ref string) string {
	t.Helper()
	return testregistry.PushImage(t, reg+"/"+ref)
}

// zen pin changes only the literals' bytes, lists the reference it cannot
// rewrite with where it is written, and leaves what is pinned as it is;
// a second pin changes nothing.
func TestPin(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	reg := strings.TrimPrefix(srv.URL, "http://")
	base := pushImage(t, reg, "base:1")
	pushImage(t, reg, "other:2")

	dir := testRepo(t)
	src := strings.NewReplacer("REG", reg, "DIGEST", base).Replace(pinCUE)
	file := filepath.Join(dir, "zen.cue")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}

	res, err := p.Pin(context.Background(), PinOptions{Check: true})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != src {
		t.Fatalf("--check wrote the file:\n%s", b)
	}
	if len(res.Pinned) != 2 || res.Pinned[0].Pinned != "" || !res.Unpinned(true) {
		t.Fatalf("check: %+v", res)
	}

	res, err = p.Pin(context.Background(), PinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(src, `"`+reg+`/base:1"   //`, `"`+reg+`/base:1@`+base+`"   //`, 1)
	want = strings.Replace(want, `image:"`+reg+`/base:1"	,`, `image:"`+reg+`/base:1@`+base+`"	,`, 1)
	got, _ := os.ReadFile(file)
	if string(got) != want {
		t.Errorf("pinned file:\n%s\nwant:\n%s", got, want)
	}
	if len(res.Pinned) != 2 || !slices.Equal(res.Pinned[0].Steps, []string{"p.a", "p.b"}) || res.Pinned[0].Pos.Line != 6 ||
		res.Pinned[1].Pos.Line != 13 || res.Pinned[1].Pinned != reg+"/base:1@"+base || res.Already != 1 {
		t.Errorf("pinned: %+v", res)
	}
	if len(res.NotPinned) != 1 || res.NotPinned[0].Pos.Line != 12 || res.NotPinned[0].Why != "not a string literal: a reference to _ref" ||
		!slices.Equal(res.NotPinned[0].Steps, []string{"p.c"}) {
		t.Errorf("not pinned: %+v", res.NotPinned)
	}

	// Pinned: a moved tag changes nothing, and pin again writes nothing.
	pushImage(t, reg, "base:1")
	p, _ = Open(dir, Options{})
	res, err = p.Pin(context.Background(), PinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(file); string(again) != want || len(res.Pinned) != 0 || res.Already != 3 {
		t.Errorf("second pin: %+v\n%s", res, again)
	}
}

// A tag the registry does not have is an error that names where it is
// written, and no file is written.
func TestPinMissingImage(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	reg := strings.TrimPrefix(srv.URL, "http://")
	pushImage(t, reg, "base:1")
	dir := testRepo(t)
	src := "package zen\n\npipelines: p: steps: {\n\ta: {image: \"" + reg + "/base:1\", run: [\"true\"]}\n\tb: {image: \"" + reg + "/nope:1\", run: [\"true\"]}\n}\n"
	file := filepath.Join(dir, "zen.cue")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Pin(context.Background(), PinOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), "zen.cue:5:13: image "+reg+"/nope:1: no such image in the registry") {
		t.Errorf("error: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != src {
		t.Errorf("wrote the file:\n%s", b)
	}
}

// splice refuses bytes that are not the literal it read.
func TestSpliceChanged(t *testing.T) {
	b := []byte(`image: "a:1"`)
	if _, err := splice(b, []pinEdit{{offset: 7, end: 12, old: `"a:2"`, new: `"x"`}}); err == nil {
		t.Error("spliced over other bytes")
	}
	got, err := splice(b, []pinEdit{{offset: 7, end: 12, old: `"a:1"`, new: `"a:1@sha256:00"`}})
	if err != nil || string(got) != `image: "a:1@sha256:00"` {
		t.Errorf("%s %v", got, err)
	}
}
