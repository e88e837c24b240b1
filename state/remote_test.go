package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// remoteTest is a bare remote and two clones of it, each with its Store.
func remoteTest(t *testing.T) (a, b *Store, bare string) {
	t.Helper()
	dir := gitTestRepo(t)
	bare = filepath.Join(t.TempDir(), "remote.git")
	gitTestRun(t, dir, "clone", "-q", "--bare", dir, bare)
	other := filepath.Join(t.TempDir(), "b")
	gitTestRun(t, dir, "clone", "-q", bare, other)
	gitTestRun(t, dir, "remote", "add", "origin", bare)
	return gitTestOpen(t, dir), gitTestOpen(t, other), bare
}

func head(t *testing.T, s *Store) string {
	t.Helper()
	return gitTestHead(t, s).Commit()
}

func TestPullPush(t *testing.T) {
	ctx := context.Background()
	a, b, bare := remoteTest(t)

	// Nothing anywhere.
	sync, err := a.Pull(ctx, "origin")
	if err != nil || sync.RemoteHead != "" || sync.Head != "" {
		t.Fatalf("Pull of nothing = %+v, %v", sync, err)
	}

	// a records and pushes; b pulls: fast-forward.
	c1 := gitTestCommit(t, a, "", map[string]string{"runs/r1.json": "1", "pipelines/p.json": "a1"})
	if err := a.Push(ctx, "origin", ""); err != nil {
		t.Fatal(err)
	}
	if got := gitTestRun(t, bare, "rev-parse", DefaultRef); got != c1 {
		t.Fatalf("remote at %s, want %s", got, c1)
	}
	if sync, err := b.Pull(ctx, "origin"); err != nil || sync.Head != c1 || head(t, b) != c1 {
		t.Fatalf("b.Pull = %+v, %v; b at %s", sync, err, head(t, b))
	}

	// A push against a stale lease is refused as a moved state.
	c2 := gitTestCommit(t, b, c1, map[string]string{"runs/r2.json": "2", "pipelines/p.json": "b2"})
	if err := b.Push(ctx, "origin", c1); err != nil {
		t.Fatal(err)
	}
	gitTestCommit(t, a, c1, map[string]string{"runs/r3.json": "3", "pipelines/q.json": "a3"})
	if err := a.Push(ctx, "origin", c1); !errors.Is(err, ErrStateMoved) {
		t.Fatalf("push on a stale lease = %v, want ErrStateMoved", err)
	}

	// Both moved, different records: a's commit is written again on top
	// of b's, message kept, nothing dropped.
	sync, err = a.Pull(ctx, "origin")
	if err != nil {
		t.Fatal(err)
	}
	if sync.Replayed != 1 || len(sync.Dropped) != 0 || sync.RemoteHead != c2 || sync.Ahead != 1 {
		t.Fatalf("Pull after both moved = %+v", sync)
	}
	sn := gitTestHead(t, a)
	for p, want := range map[string]string{"runs/r1.json": "1", "runs/r2.json": "2", "runs/r3.json": "3", "pipelines/p.json": "b2", "pipelines/q.json": "a3"} {
		if got := gitTestRead(t, sn, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if log, err := a.Log(2); err != nil || len(log) != 2 || log[1].Commit != c2 || log[0].Message != "test" {
		t.Errorf("after the replay, the log is %+v, %v; want the replayed commit, message kept, on %s", log, err, c2)
	}
	if err := a.Push(ctx, "origin", sync.RemoteHead); err != nil {
		t.Fatal(err)
	}

	// Both changed the same pipeline's baseline: the remote's is kept,
	// the run goes in, and the path is reported.
	if _, err := b.Pull(ctx, "origin"); err != nil {
		t.Fatal(err)
	}
	top := head(t, b)
	gitTestCommit(t, b, top, map[string]string{"runs/r4.json": "4", "pipelines/p.json": "b4"})
	if err := b.Push(ctx, "origin", top); err != nil {
		t.Fatal(err)
	}
	gitTestCommit(t, a, top, map[string]string{"runs/r5.json": "5", "pipelines/p.json": "a5"})
	sync, err = a.Pull(ctx, "origin")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sync.Dropped, []string{"pipelines/p.json"}) {
		t.Fatalf("Dropped = %v", sync.Dropped)
	}
	sn = gitTestHead(t, a)
	if got := gitTestRead(t, sn, "pipelines/p.json"); got != "b4" {
		t.Errorf("pipelines/p.json = %q, want the remote's b4", got)
	}
	if got := gitTestRead(t, sn, "runs/r5.json"); got != "5" {
		t.Errorf("runs/r5.json = %q: the local run was lost", got)
	}
	if out := gitTestRun(t, bare, "for-each-ref", "refs/zen/backup"); out != "" {
		t.Errorf("backup ref left behind: %s", out)
	}

	// An unreachable remote is ErrRemote, not a moved state.
	if err := os.Rename(bare, bare+".gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Pull(ctx, "origin"); !errors.Is(err, ErrRemote) {
		t.Errorf("Pull from a missing remote = %v, want ErrRemote", err)
	}
	if err := a.Push(ctx, "origin", "x"); !errors.Is(err, ErrRemote) || errors.Is(err, ErrStateMoved) {
		t.Errorf("Push to a missing remote = %v, want ErrRemote", err)
	}
}

// TestPullReplayEdges: two first applies with no history in common, a
// commit of two baselines of which the remote changed one, and a push the
// remote itself refuses.
func TestPullReplayEdges(t *testing.T) {
	ctx := context.Background()
	a, b, bare := remoteTest(t)
	gitTestCommit(t, b, "", map[string]string{"runs/b1.json": "b", "pipelines/p.json": "b"})
	if err := b.Push(ctx, "origin", ""); err != nil {
		t.Fatal(err)
	}
	gitTestCommit(t, a, "", map[string]string{"runs/a1.json": "a", "pipelines/p.json": "a", "pipelines/q.json": "a"})
	if err := a.Push(ctx, "origin", ""); !errors.Is(err, ErrStateMoved) {
		t.Fatalf("push = %v, want ErrStateMoved", err)
	}
	sync, err := a.Pull(ctx, "origin")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sync.Dropped, []string{"pipelines/p.json"}) || sync.Replayed != 1 {
		t.Fatalf("Pull = %+v: want only p.json dropped", sync)
	}
	sn := gitTestHead(t, a)
	for p, want := range map[string]string{"runs/a1.json": "a", "runs/b1.json": "b", "pipelines/p.json": "b", "pipelines/q.json": "a"} {
		if got := gitTestRead(t, sn, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if err := a.Push(ctx, "origin", sync.RemoteHead); err != nil {
		t.Fatal(err)
	}

	// The remote hides refs/zen: its refusal is not a moved lease.
	gitTestRun(t, bare, "config", "receive.hideRefs", "refs/zen")
	// (The client no longer sees the ref, so its lease is on none.)
	gitTestCommit(t, a, head(t, a), map[string]string{"runs/a2.json": "a"})
	if err := a.Push(ctx, "origin", ""); !errors.Is(err, ErrRemote) || errors.Is(err, ErrStateMoved) {
		t.Errorf("push the remote refuses = %v, want ErrRemote", err)
	}
}
