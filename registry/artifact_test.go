package registry

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestPushRejects(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		tree map[string]string
		want string // "" if the push must succeed
	}{
		{"link inside", map[string]string{"a": "A", "sub/l -> ../a": "", "l -> sub/l": ""}, ""},
		{"dangling link inside", map[string]string{"l -> not/there/..": ""}, ""},
		{"link to parent", map[string]string{"l -> ../x": ""}, "symlink l -> ../x: leads outside the directory"},
		{"nested link to parent", map[string]string{"sub/l -> ../../x": ""}, "symlink sub/l -> ../../x: leads outside the directory"},
		{"absolute link", map[string]string{"l -> /etc/passwd": ""}, "symlink l -> /etc/passwd: leads outside the directory"},
		{"link through a link", map[string]string{"up -> .": "", "l -> up/..": ""}, "symlink l -> up/..: leads outside the directory"},
		{"link through a dir link", map[string]string{"d -> sub": "", "sub/": "", "l -> d/../..": ""}, "symlink l -> d/../..: leads outside the directory"},
		{"link loop", map[string]string{"a -> b": "", "b -> a": ""}, "symlink a -> b: too many levels of symlinks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			writeTree(t, dir, tt.tree)
			s := newLayout(t)
			_, err := s.Push(ctx, dir, "model")
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Push = %v, want success", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), "push "+dir+": "+tt.want)):
				t.Errorf("Push = %v, want an error with %q", err, tt.want)
			}
			if left, _ := filepath.Glob(filepath.Join(asLayout(s).blobDir(), ".zen-tmp-*")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}

	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := newLayout(t).Push(ctx, dir, "model")
	if err == nil || !strings.Contains(err.Error(), "fifo is not a regular file, directory or symlink") {
		t.Errorf("Push of a fifo = %v", err)
	}
	_, err = newLayout(t).Push(ctx, filepath.Join(dir, "fifo"), "model")
	if err == nil || !strings.Contains(err.Error(), "is not a regular file or a directory") {
		t.Errorf("Push of a fifo = %v", err)
	}
	_, err = newLayout(t).Push(ctx, filepath.Join(dir, "missing"), "model")
	if !os.IsNotExist(err) && (err == nil || !strings.Contains(err.Error(), "no such file")) {
		t.Errorf("Push of nothing = %v", err)
	}
}
