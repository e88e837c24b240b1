package state

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

type lockResult struct {
	l   *ApplyLock
	err error
}

func TestApplyLock(t *testing.T) {
	defer func(d time.Duration) { applyLockPoll = d }(applyLockPoll)
	applyLockPoll = time.Millisecond
	ctx := context.Background()
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	l, err := s.LockApply(ctx, "zen apply", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A second holder, as another process would be: flock locks belong
	// to open files, so a second Open of the same clone conflicts.
	s2 := gitTestOpen(t, dir)
	_, err = s2.LockApply(ctx, "zen apply", 0, func(string) { t.Error("no timeout, yet it waited") })
	if !errors.Is(err, ErrApplyLocked) || !strings.Contains(err.Error(), "zen apply (pid ") {
		t.Fatalf("second lock: %v, want ErrApplyLocked naming the holder", err)
	}

	// Waiting: the lock is taken once released, and not before.
	waiting := make(chan string, 1)
	got := make(chan lockResult, 1)
	go func() {
		l2, err := s2.LockApply(ctx, "zen runs watch", time.Minute, func(holder string) { waiting <- holder })
		got <- lockResult{l2, err}
	}()
	if holder := <-waiting; !strings.HasPrefix(holder, "zen apply (pid ") {
		t.Errorf("waiting for %q, want the holder", holder)
	}
	// Many polls later it still waits: the first holder has the lock.
	for range 20 {
		if _, err := s.LockApply(ctx, "probe", 0, nil); !errors.Is(err, ErrApplyLocked) {
			t.Fatalf("probe while held: %v", err)
		}
	}
	select {
	case r := <-got:
		t.Fatalf("took the lock while it was held: %v", r.err)
	default:
	}
	l.Release()
	r := <-got
	if r.err != nil {
		t.Fatalf("waiting lock: %v", r.err)
	}
	r.l.Release()
	r.l.Release() // twice is fine
}

// Cancelling the context ends the wait at once, however long the timeout.
func TestApplyLockCancel(t *testing.T) {
	dir := gitTestRepo(t)
	l, err := gitTestOpen(t, dir).LockApply(context.Background(), "zen apply", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan string, 1)
	got := make(chan lockResult, 1)
	go func() {
		l2, err := gitTestOpen(t, dir).LockApply(ctx, "zen apply", time.Hour, func(holder string) { waiting <- holder })
		got <- lockResult{l2, err}
	}()
	<-waiting
	cancel()
	start := time.Now()
	select {
	case r := <-got:
		if !errors.Is(r.err, context.Canceled) || !strings.Contains(r.err.Error(), "stopped waiting for zen apply (pid ") {
			t.Fatalf("cancelled: %v, want context.Canceled naming the holder", r.err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("returned %s after the cancel", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LockApply ignored the cancelled context")
	}
}

// A process killed while it holds the lock leaves none behind.
func TestApplyLockReleasedByDeath(t *testing.T) {
	if os.Getenv("ZEN_TEST_LOCK_CHILD") != "" {
		s, err := Open(os.Getenv("ZEN_TEST_LOCK_CHILD"), "")
		if err != nil {
			os.Exit(3)
		}
		if _, err := s.LockApply(context.Background(), "child", 0, nil); err != nil {
			os.Exit(4)
		}
		os.Stdout.WriteString("locked\n")
		// Held until the parent kills this process.
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	dir := gitTestRepo(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestApplyLockReleasedByDeath$")
	cmd.Env = append(os.Environ(), "ZEN_TEST_LOCK_CHILD="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
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
	if _, err := s.LockApply(context.Background(), "zen apply", 0, nil); !errors.Is(err, ErrApplyLocked) {
		t.Fatalf("lock while the child holds it: %v", err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	l, err := s.LockApply(context.Background(), "zen apply", 0, nil)
	if err != nil {
		t.Fatalf("lock after the holder was killed: %v", err)
	}
	l.Release()
}
