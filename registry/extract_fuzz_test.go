package registry

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fuzzEntry is one entry of a seed archive: a directory (name ending in
// "/"), a symlink (link set) or a regular file.
type fuzzEntry struct {
	name, link, body string
}

// fuzzTar writes entries as a tar, as zen push does for a directory.
func fuzzTar(tb testing.TB, entries ...fuzzEntry) []byte {
	tb.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case strings.HasSuffix(e.name, "/"):
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// fixChecksums rewrites the checksum of every header block of the tar in
// b, found by the sizes the headers before it give, so that the fuzzer's
// changes to names, types, sizes and links reach extraction rather than
// stop at archive/tar's checksum check.
func fixChecksums(b []byte) []byte {
	b = slices.Clone(b)
	for off := 0; off+512 <= len(b); {
		block := b[off : off+512]
		off += 512
		if bytes.Count(block, []byte{0}) == 512 {
			continue
		}
		copy(block[148:156], "        ")
		sum := 0
		for _, c := range block {
			sum += int(c)
		}
		copy(block[148:156], fmt.Sprintf("%06o\x00 ", sum))
		size, err := strconv.ParseInt(strings.Trim(string(block[124:136]), " \x00"), 8, 64)
		if err != nil || size < 0 || size > int64(len(b)) {
			continue
		}
		off += int(size+511) &^ 511
	}
	return b
}

// FuzzExtract unpacks arbitrary tars with extract, the way a pulled
// directory artifact is unpacked, into dest beside a canary folder. Whether
// it succeeds or not, nothing may appear outside dest, the canary must be
// untouched, and dest may hold only directories, regular files and
// symlinks. When it succeeds, no entry had an absolute path, a ".." or an
// absolute link, every symlink in dest must stay inside it, and every
// regular file of the tar must be in dest with its content.
func FuzzExtract(f *testing.F) {
	seeds := [][]fuzzEntry{
		{{name: "model/"}, {name: "model/weights.bin", body: "\x00\x01\x02\x03"}, {name: "model/config.json", body: `{"layers":3}`}, {name: "README.md", body: "iris\n"}},
		{{name: "a", body: "A"}, {name: "sub/l", link: "../a"}, {name: "l", link: "sub/l"}},
		{{name: "l", link: "not/there/.."}},
		{{name: "../canary/pwned", body: "x"}},
		{{name: "/tmp/pwned", body: "x"}},
		{{name: "sub/../../canary/pwned", body: "x"}},
		{{name: "l", link: "../canary"}, {name: "l/pwned", body: "x"}},
		{{name: "l", link: "/etc/passwd"}},
		{{name: "up", link: "."}, {name: "l", link: "up/.."}},
		{{name: "d", link: "sub"}, {name: "sub/"}, {name: "l", link: "d/../.."}},
		{{name: "a", link: "b"}, {name: "b", link: "a"}},
		{{name: "x", link: "../canary/keep"}, {name: "x", body: "overwrite"}},
		{{name: "dup", body: "1"}, {name: "dup", body: "2"}},
		{{name: "./", body: ""}, {name: "./a/./b", body: "B"}},
	}
	for _, s := range seeds {
		f.Add(fuzzTar(f, s...))
	}
	// The same paths every time, so that the coverage an input reaches
	// does not depend on the name of a temporary directory. The canary is
	// made once: an input that touches it fails.
	out := filepath.Join(f.TempDir(), "out")
	canary, dest := filepath.Join(out, "canary"), filepath.Join(out, "dest")
	if err := os.MkdirAll(canary, 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(canary, "keep"), []byte("canary"), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		data = fixChecksums(data)
		if err := os.RemoveAll(dest); err != nil {
			t.Fatal(err)
		}
		err := extract(bytes.NewReader(data), dest)
		checkContained(t, out, dest, canary)
		if err != nil {
			return
		}
		checkLinksInside(t, dest)
		checkEntries(t, data, dest)
	})
}

// checkContained fails if anything but the canary, untouched, and what is
// under dest is found under base, or if dest holds anything but
// directories, regular files and symlinks.
func checkContained(t *testing.T, base, dest, canary string) {
	t.Helper()
	allowed := map[string]bool{base: true, canary: true, filepath.Join(canary, "keep"): true}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dest && !strings.HasPrefix(p, dest+string(filepath.Separator)) {
			if !allowed[p] {
				t.Fatalf("extraction created %s, outside %s", p, dest)
			}
			return nil
		}
		if typ := d.Type(); typ != 0 && typ != fs.ModeDir && typ != fs.ModeSymlink {
			t.Fatalf("extraction created %s of type %v", p, typ)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(canary, "keep"))
	if err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("the canary is gone or replaced: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(canary, "keep")); err != nil || string(b) != "canary" {
		t.Fatalf("the canary was written: %q, %v", b, err)
	}
}

// checkLinksInside fails if a symlink under dest leads outside it, as
// os.Root, which follows symlinks only inside its directory, judges it.
func checkLinksInside(t *testing.T, dest string) {
	t.Helper()
	root, err := os.OpenRoot(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	err = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type() != fs.ModeSymlink {
			return err
		}
		rel, err := filepath.Rel(dest, p)
		if err != nil {
			return err
		}
		if _, err := root.Stat(rel); err != nil && !errors.Is(err, fs.ErrNotExist) && !isLoop(err) {
			target, _ := os.Readlink(p)
			t.Fatalf("extracted symlink %s -> %s: %v", rel, target, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// isLoop reports whether err is the error of a symlink that leads, however
// often, to itself or through a file.
func isLoop(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && (strings.Contains(pe.Err.Error(), "too many levels of symbolic links") || strings.Contains(pe.Err.Error(), "not a directory"))
}

// checkEntries reads the tar in data again: no entry may have an absolute
// path, a ".." or an absolute symlink target, and every regular file must
// be in dest with its content.
func checkEntries(t *testing.T, data []byte, dest string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("extract accepted a tar that does not read: %v", err)
		}
		if path.IsAbs(h.Name) || slices.Contains(strings.Split(h.Name, "/"), "..") {
			t.Fatalf("extract accepted the entry %q", h.Name)
		}
		if h.Typeflag == tar.TypeSymlink && (path.IsAbs(h.Linkname) || filepath.IsAbs(h.Linkname)) {
			t.Fatalf("extract accepted the symlink %q -> %q", h.Name, h.Linkname)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		want, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("extract accepted the entry %q, which does not read: %v", h.Name, err)
		}
		got, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(path.Clean(h.Name))))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("entry %q: extracted %q (%v), want %q", h.Name, got, err, want)
		}
	}
}

// FuzzRawLayers unpacks a tar layer, then raw layers at the paths in paths
// (one a line), each holding its own path, as PullModel does a model that
// mixes them. Whether it succeeds or not, nothing may appear outside dest
// and the canary must be untouched; when it succeeds, no raw path had an
// absolute path or a "..", and each file is in dest with its content.
func FuzzRawLayers(f *testing.F) {
	seeds := []struct {
		tar   []fuzzEntry
		paths string
	}{
		{nil, "model.bin\nconfig.json\ndocs/usage.md"},
		{nil, "../canary/pwned"},
		{nil, "/tmp/pwned"},
		{nil, "a/../../canary/pwned"},
		{nil, "dup\ndup"},
		{nil, "a\na/b"},
		{nil, "a/b\na"},
		{nil, ".\n./a/./b"},
		{[]fuzzEntry{{name: "l", link: "../canary"}}, "l/pwned"},
		{[]fuzzEntry{{name: "l", link: "../canary/keep"}}, "l"},
		{[]fuzzEntry{{name: "up", link: "."}}, "up/up/x"},
		{[]fuzzEntry{{name: "d/"}, {name: "d/f", body: "F"}}, "d/f\nd/g"},
	}
	for _, s := range seeds {
		f.Add(fuzzTar(f, s.tar...), s.paths)
	}
	out := filepath.Join(f.TempDir(), "out")
	canary, dest := filepath.Join(out, "canary"), filepath.Join(out, "dest")
	if err := os.MkdirAll(canary, 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(canary, "keep"), []byte("canary"), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, paths string) {
		data = fixChecksums(data)
		if err := os.RemoveAll(dest); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dest, 0o755); err != nil {
			t.Fatal(err)
		}
		links, err := extractInto(bytes.NewReader(data), dest)
		names := strings.Split(paths, "\n")
		for _, p := range names {
			if err != nil {
				break
			}
			l := descriptor{Size: int64(len(p)), Annotations: map[string]string{AnnotationFilepath: p}}
			err = writeRaw(strings.NewReader(p), dest, l)
		}
		if err == nil {
			err = checkLinks(dest, links)
		}
		checkContained(t, out, dest, canary)
		if err != nil {
			return
		}
		checkLinksInside(t, dest)
		for _, p := range names {
			if path.IsAbs(p) || slices.Contains(strings.Split(p, "/"), "..") {
				t.Fatalf("writeRaw accepted the path %q", p)
			}
			got, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(path.Clean(p))))
			if err != nil || string(got) != p {
				t.Fatalf("raw layer %q: wrote %q (%v)", p, got, err)
			}
		}
	})
}
