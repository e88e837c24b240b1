package cli

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zen-dev/zen/state"
)

// TestMain runs zen itself when ZEN_TEST_MAIN is set, so that a test can
// start it as a process and signal it.
func TestMain(m *testing.M) {
	if os.Getenv("ZEN_TEST_MAIN") != "" {
		os.Exit(Main())
	}
	os.Exit(m.Run())
}

// testRepo makes a committed repository with one pipeline, and the
// environment zen runs in there (its own HOME and git config).
func testRepo(t *testing.T) (dir string, env []string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git")
	}
	dir = t.TempDir()
	home := t.TempDir()
	cfg := filepath.Join(home, ".gitconfig")
	if err := os.WriteFile(cfg, []byte("[user]\n\tname = Zen Test\n\temail = test@zen.invalid\n[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n[gc]\n\tauto = 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_GLOBAL="+cfg, "GIT_CONFIG_NOSYSTEM=1", "NO_COLOR=1", "ZEN_REMOTE=none", "DOCKER_CONFIG="+filepath.Join(home, ".docker"))
	cue := "package zen\n\npipelines: p: steps: s: {\n\trun: [\"sh\", \"-c\", \"echo 1 > $ZEN_OUTPUTS/out\"]\n\toutputs: out: type: \"file\"\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "zen.cue"), []byte(cue), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte(".zen/\n/cosign.pub\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "-m", "p"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return dir, env
}

// Ctrl-C ends zen apply's wait for another apply's lock within a second,
// however long --lock-timeout is.
func TestApplyLockInterrupt(t *testing.T) {
	dir, env := testRepo(t)
	st, err := state.Open(dir, state.DefaultRef)
	if err != nil {
		t.Fatal(err)
	}
	// The other apply: this process holds the clone's lock.
	held, err := st.LockApply(context.Background(), "zen apply", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()

	cmd := exec.Command(os.Args[0], "-C", dir, "apply", "--lock-timeout", "30m")
	cmd.Env = append(env, "ZEN_TEST_MAIN=1")
	// An os.Pipe, not StderrPipe: Wait would close that before the last
	// lines are read.
	stderr, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(what string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("zen apply ended before %s", what)
			}
			return l
		case <-time.After(30 * time.Second):
			t.Fatalf("zen apply did not say %s in 30s", what)
		}
		return ""
	}
	// It says that it waits: only then is it waiting.
	if l := next("that it waits"); !strings.HasPrefix(l, "zen: waiting up to 30m0s for zen apply (pid ") || !strings.HasSuffix(l, "to finish (Ctrl-C stops waiting)") {
		t.Fatalf("first line on stderr: %q, want that it waits for the holder", l)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if d := time.Since(start); d > time.Second {
			t.Errorf("zen apply exited %s after SIGINT, want within 1s", d)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitCancelled {
			t.Errorf("exit: %v, want status %d", err, exitCancelled)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("zen apply still runs 10s after SIGINT")
	}
	var last []string
	for l := range lines {
		last = append(last, l)
	}
	msg := strings.Join(last, "\n")
	if !strings.Contains(msg, "zen: stopped waiting for zen apply (pid ") || !strings.Contains(msg, "zen-apply.lock: context canceled") {
		t.Errorf("stderr after SIGINT: %q, want that it stopped waiting for the holder", msg)
	}
	// It recorded nothing, and the holder still holds the lock.
	if _, err := st.LockApply(context.Background(), "probe", 0, nil); !errors.Is(err, state.ErrApplyLocked) {
		t.Errorf("the holder's lock: %v", err)
	}
}
