package zen

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zen-dev/zen/internal/wait"
	"github.com/zen-dev/zen/state"
)

// testRepo makes a committed repository with one pipeline, with git
// configured for the test alone (its own HOME and git config).
func testRepo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git")
	}
	dir := t.TempDir()
	home := t.TempDir()
	cfg := filepath.Join(home, ".gitconfig")
	if err := os.WriteFile(cfg, []byte("[user]\n\tname = Zen Test\n\temail = test@zen.invalid\n[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n[gc]\n\tauto = 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"HOME": home, "GIT_CONFIG_GLOBAL": cfg, "GIT_CONFIG_NOSYSTEM": "1"} {
		t.Setenv(k, v)
	}
	cue := "package zen\n\npipelines: p: steps: s: {\n\trun: [\"sh\", \"-c\", \"echo 1 > $ZEN_OUTPUTS/out\"]\n\toutputs: out: type: \"file\"\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "zen.cue"), []byte(cue), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "-m", "p"}} {
		runGit(t, dir, args...)
	}
	return dir
}

func runGit(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Cancelling ends Push's pause between pushes at once.
func TestPushCancel(t *testing.T) {
	dir := testRepo(t)
	runGit(t, dir, "remote", "add", "origin", filepath.Join(t.TempDir(), "gone"))
	p, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.State().Commit(context.Background(), "", state.Change{Files: map[string][]byte{"pipelines/p.json": []byte("{}")}}); err != nil {
		t.Fatal(err)
	}
	paused := make(chan time.Duration, 3)
	pause := func(ctx context.Context, d time.Duration) error {
		paused <- d
		return wait.Sleep(ctx, d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- push(ctx, p.state, "origin", "", time.Hour, pause) }()
	// The push failed and it pauses an hour before the next.
	if d := <-paused; d != time.Hour {
		t.Fatalf("paused %s, want the retry pause", d)
	}
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !errors.Is(err, state.ErrRemote) {
			t.Fatalf("err = %v, want the push's error and context.Canceled", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("returned %s after the cancel", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Push ignored the cancelled context")
	}
}
