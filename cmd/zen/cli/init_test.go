package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// zen init's repository is on git's init.defaultBranch, read by git where
// it is installed and by go-git where it is not, else on main.
func TestDefaultBranch(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	cfg := filepath.Join(home, "other.gitconfig")
	if err := os.WriteFile(cfg, []byte("[init]\n\tdefaultBranch = trunk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CONFIG_GLOBAL", cfg)
	if _, err := exec.LookPath("git"); err == nil {
		if got := defaultBranch(); got != "trunk" {
			t.Errorf("with git and GIT_CONFIG_GLOBAL: %q, want trunk", got)
		}
	}

	// Without git: go-git reads ~/.gitconfig.
	t.Setenv("PATH", t.TempDir())
	if got := defaultBranch(); got != "main" {
		t.Errorf("without git or a config: %q, want main", got)
	}
	if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[init]\n\tdefaultBranch = develop\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := defaultBranch(); got != "develop" {
		t.Errorf("without git: %q, want develop", got)
	}
	if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[init]\n\tdefaultBranch = \"bad..name\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := defaultBranch(); got != "main" {
		t.Errorf("with an invalid name: %q, want main", got)
	}
}
