package workspace

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/zen-dev/zen/schema"
)

func runGit(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@zen.invalid"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
}

func repo(t *testing.T) string {
	dir := t.TempDir()
	runGit(t, dir, "init", "-q")
	os.MkdirAll(filepath.Join(dir, "steps", "lib"), 0o755)
	os.WriteFile(filepath.Join(dir, "steps", "train.py"), []byte("print(1)\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "steps", "lib", "a.py"), []byte("a\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "steps", "lib", "b.py"), []byte("b\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("ignored/\n"), 0o644)
	runGit(t, dir, "add", "-A")
	runGit(t, dir, "commit", "-qm", "x")
	return dir
}

func TestOpen(t *testing.T) {
	dir := repo(t)
	ws, err := Open(filepath.Join(dir, "steps", "lib"))
	if err != nil {
		t.Fatal(err)
	}
	if ws.Root != dir {
		t.Errorf("root %s, want %s", ws.Root, dir)
	}
	if head, err := ws.Head(); err != nil || len(head) != 40 {
		t.Errorf("head %q, %v", head, err)
	}
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrNotRepository) {
		t.Errorf("outside a repository: %v", err)
	}
}

func TestChanges(t *testing.T) {
	dir := repo(t)
	ws, _ := Open(dir)
	if paths, id, err := ws.Changes(); err != nil || len(paths) != 0 || id != "" {
		t.Fatalf("clean tree: %v %q %v", paths, id, err)
	}
	// zen's own folder and ignored files are not changes, and git itself
	// ignores zen's folder.
	if err := ws.EnsureDataDir(); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, ".zen", "store"), 0o755)
	os.WriteFile(filepath.Join(dir, ".zen", "store", "x"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(dir, "ignored"), 0o755)
	os.WriteFile(filepath.Join(dir, "ignored", "y"), []byte("y"), 0o644)
	if paths, _, _ := ws.Changes(); len(paths) != 0 {
		t.Fatalf("zen's folder or ignored files counted: %v", paths)
	}
	st := exec.Command("git", "status", "--porcelain")
	st.Dir = dir
	if out, err := st.Output(); err != nil || len(out) != 0 {
		t.Fatalf("git status shows zen's folder: %q %v", out, err)
	}
	os.WriteFile(filepath.Join(dir, "steps", "train.py"), []byte("print(2)\n"), 0o644)
	paths, id1, err := ws.Changes()
	if err != nil || strings.Join(paths, ",") != "steps/train.py" || !strings.HasPrefix(id1, "sha256:") {
		t.Fatalf("modified: %v %q %v", paths, id1, err)
	}
	// The id follows the content of the changes.
	os.WriteFile(filepath.Join(dir, "steps", "train.py"), []byte("print(3)\n"), 0o644)
	ws2, _ := Open(dir)
	if _, id2, _ := ws2.Changes(); id2 == id1 {
		t.Fatal("different changes, same id")
	}
}

func TestCode(t *testing.T) {
	dir := repo(t)
	ws, _ := Open(dir)
	s := &schema.Step{Run: []string{"python3", "-u", "steps/train.py", "--flag", "/abs"}, Code: []string{"steps/lib/**/*.py"}}
	code, err := ws.Code(s)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for p := range code {
		got = append(got, p)
	}
	sort.Strings(got)
	if strings.Join(got, " ") != "steps/lib/a.py steps/lib/b.py steps/train.py" {
		t.Fatalf("code files: %v", got)
	}
	s.Code = []string{"src/**/*.py"}
	if _, err := ws.Code(s); err == nil || !strings.Contains(err.Error(), `"src/**/*.py" matches no file`) {
		t.Fatalf("glob matching nothing: %v", err)
	}

	// A ** that goes down a linked folder out of the repository.
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.py"), []byte("s"), 0o644)
	if err := os.Symlink(outside, filepath.Join(dir, "steps", "lib", "vendor")); err != nil {
		t.Fatal(err)
	}
	s.Code = []string{"steps/**/*.py"}
	if _, err := ws.Code(s); err == nil || !strings.Contains(err.Error(), `code: "steps/**/*.py" matches steps/lib/vendor/secret.py, which links outside the repository (to `) {
		t.Fatalf("glob through a link out: %v", err)
	}
}

func TestExecutable(t *testing.T) {
	ws, _ := Open(repo(t))
	id, err := ws.Executable("sh")
	if err != nil || !strings.HasPrefix(id, "sh sha256:") {
		t.Fatalf("sh: %q %v", id, err)
	}
	if id, err := ws.Executable("steps/run.sh"); err != nil || id != "" {
		t.Fatalf("a repository path is code, not a program: %q %v", id, err)
	}
	if _, err := ws.Executable("no-such-program-zen"); err == nil || !strings.Contains(err.Error(), "not found on PATH") {
		t.Fatalf("missing: %v", err)
	}
}
