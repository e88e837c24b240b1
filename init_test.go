package zen

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Init makes a repository where there is none and writes the quickstart;
// a second Init keeps every file, and appends to a .gitignore only the
// lines it lacks.
func TestInit(t *testing.T) {
	dir := t.TempDir()
	done, err := Init(dir, "trunk")
	if err != nil {
		t.Fatal(err)
	}
	if done.Branch != "trunk" || !slices.Contains(done.Created, "zen.cue") || len(done.Kept) != 0 {
		t.Fatalf("first Init: %+v", done)
	}
	if _, err := Open(dir, Options{}); err != nil {
		t.Fatalf("open what Init made: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := Init(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if again.Branch != "" || !slices.Equal(again.Created, []string{".gitignore (appended)"}) || !slices.Contains(again.Kept, "zen.cue") {
		t.Errorf("second Init: %+v", again)
	}
	b, err := os.ReadFile(filepath.Join(dir, ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:5]) != "mine\n" {
		t.Errorf(".gitignore: %q, want its line kept first", b)
	}
}
