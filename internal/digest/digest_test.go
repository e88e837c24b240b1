package digest

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a")
	os.WriteFile(p, []byte("hello\n"), 0o644)
	h := New(filepath.Join(dir, "cache.json"))
	d, err := h.File(p)
	if err != nil {
		t.Fatal(err)
	}
	// sha256sum of "hello\n".
	if want := "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"; d != want {
		t.Fatalf("digest %s, want %s", d, want)
	}
	if err := h.Save(); err != nil {
		t.Fatal(err)
	}
	// A new Hasher trusts the saved stat cache while size, mtime and inode
	// hold: prove it by planting a wrong digest, then by changing the file.
	h2 := New(filepath.Join(dir, "cache.json"))
	h2.cache[p] = entry{Size: h2.cache[p].Size, MTime: h2.cache[p].MTime, Inode: h2.cache[p].Inode, Digest: "sha256:planted"}
	if d, _ := h2.File(p); d != "sha256:planted" {
		t.Fatalf("stat cache not used: %s", d)
	}
	os.WriteFile(p, []byte("hello, world\n"), 0o644)
	os.Chtimes(p, time.Now().Add(time.Second), time.Now().Add(time.Second))
	if d, _ := h2.File(p); d == "sha256:planted" || d == "" {
		t.Fatalf("changed file not re-read: %s", d)
	}
}

func TestDir(t *testing.T) {
	mk := func() string {
		d := t.TempDir()
		os.MkdirAll(filepath.Join(d, "sub", "empty"), 0o755)
		os.WriteFile(filepath.Join(d, "sub", "x.txt"), []byte("x"), 0o644)
		os.WriteFile(filepath.Join(d, "run.sh"), []byte("#!/bin/sh"), 0o755)
		return d
	}
	a, b := mk(), mk()
	h := New("")
	da, err := h.Dir(a)
	if err != nil {
		t.Fatal(err)
	}
	if db, _ := h.Dir(b); da != db {
		t.Fatalf("same content, different digests: %s %s", da, db)
	}
	for name, change := range map[string]func(d string){
		"content":   func(d string) { os.WriteFile(filepath.Join(d, "sub", "x.txt"), []byte("y"), 0o644) },
		"exec bit":  func(d string) { os.Chmod(filepath.Join(d, "run.sh"), 0o644) },
		"empty dir": func(d string) { os.Remove(filepath.Join(d, "sub", "empty")) },
		"rename":    func(d string) { os.Rename(filepath.Join(d, "sub", "x.txt"), filepath.Join(d, "sub", "z.txt")) },
	} {
		c := mk()
		change(c)
		if dc, _ := New("").Dir(c); dc == da {
			t.Errorf("%s: digest did not change", name)
		}
	}
}

// TestDirLinks hashes a folder reached through a symlink as the folder it
// leads to, and refuses links in it that lead out of it: their targets'
// content would not be in the digest.
func TestDirLinks(t *testing.T) {
	d := t.TempDir()
	data := filepath.Join(d, "data")
	os.MkdirAll(filepath.Join(data, "v2"), 0o755)
	os.WriteFile(filepath.Join(data, "v2", "x.txt"), []byte("x"), 0o644)
	os.Symlink("v2", filepath.Join(data, "current"))
	h := New("")
	viaLink, err := h.Dir(filepath.Join(data, "current"))
	if err != nil {
		t.Fatal(err)
	}
	direct, _ := h.Dir(filepath.Join(data, "v2"))
	if viaLink != direct {
		t.Errorf("through a link: %s, direct: %s", viaLink, direct)
	}
	os.WriteFile(filepath.Join(data, "v2", "x.txt"), []byte("changed"), 0o644)
	if again, _ := New("").Dir(filepath.Join(data, "current")); again == viaLink {
		t.Error("content changed behind a link, digest did not")
	}

	// Links that stay in the folder are hashed by their text, dangling or
	// not; links that leave it are refused.
	os.Symlink("x.txt", filepath.Join(data, "v2", "same"))
	os.Symlink("gone.txt", filepath.Join(data, "v2", "dangling"))
	if _, err := New("").Dir(filepath.Join(data, "v2")); err != nil {
		t.Errorf("links inside: %v", err)
	}
	for name, target := range map[string]string{"abs": "/etc/hostname", "up": "../../outside", "sideways": "../current/x.txt"} {
		sub := filepath.Join(d, name)
		os.MkdirAll(sub, 0o755)
		os.Symlink(target, filepath.Join(sub, "l"))
		_, err := New("").Dir(sub)
		if err == nil || err.Error() != "link l leads outside the folder (to "+target+")" {
			t.Errorf("%s: %v", name, err)
		}
	}
}
