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
