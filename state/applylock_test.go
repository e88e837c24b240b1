package state

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestApplyLock(t *testing.T) {
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	l, err := s.LockApply("zen apply", 0)
	if err != nil {
		t.Fatal(err)
	}
	// A second holder, as another process would be: flock locks belong
	// to open files, so a second Open of the same clone conflicts.
	s2 := gitTestOpen(t, dir)
	_, err = s2.LockApply("zen apply", 0)
	if !errors.Is(err, ErrApplyLocked) || !strings.Contains(err.Error(), "zen apply (pid ") {
		t.Fatalf("second lock: %v, want ErrApplyLocked naming the holder", err)
	}
	// Waiting: the lock is taken once released.
	go func() {
		time.Sleep(300 * time.Millisecond)
		l.Release()
	}()
	l2, err := s2.LockApply("zen runs watch", 5*time.Second)
	if err != nil {
		t.Fatalf("waiting lock: %v", err)
	}
	l2.Release()
	l2.Release() // twice is fine
}

// A process killed while it holds the lock leaves none behind.
func TestApplyLockReleasedByDeath(t *testing.T) {
	if os.Getenv("ZEN_TEST_LOCK_CHILD") != "" {
		s, err := Open(os.Getenv("ZEN_TEST_LOCK_CHILD"), "")
		if err != nil {
			os.Exit(3)
		}
		if _, err := s.LockApply("child", 0); err != nil {
			os.Exit(4)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	dir := gitTestRepo(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestApplyLockReleasedByDeath$")
	cmd.Env = append(os.Environ(), "ZEN_TEST_LOCK_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("child: %q, %v", buf, err)
	}
	s := gitTestOpen(t, dir)
	if _, err := s.LockApply("zen apply", 0); !errors.Is(err, ErrApplyLocked) {
		t.Fatalf("lock while the child holds it: %v", err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	l, err := s.LockApply("zen apply", 0)
	if err != nil {
		t.Fatalf("lock after the holder was killed: %v", err)
	}
	l.Release()
}
