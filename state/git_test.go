package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// gitTestEnv makes git and Open independent of the machine: a global
// config of the test's own, no system config, no GIT_* variables.
func gitTestEnv(t testing.TB) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "gitconfig")
	if err := os.WriteFile(cfg, []byte("[user]\n\tname = Zen Test\n\temail = zen-test@example.com\n[init]\n\tdefaultBranch = main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CONFIG_GLOBAL", cfg)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	for _, k := range []string{
		"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
		"GIT_CEILING_DIRECTORIES", "GIT_CONFIG_SYSTEM", "GIT_CONFIG", "GIT_CONFIG_COUNT",
		"GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE",
		"GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE",
	} {
		t.Setenv(k, "") // restored after the test
		os.Unsetenv(k)
	}
}

// gitTestRun runs the git CLI in dir and returns its trimmed stdout.
func gitTestRun(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := gitTestTry(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func gitTestTry(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%v: %s%s", err, stdout.String(), stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// gitTestRepo makes a repository with one commit on main.
func gitTestRepo(t testing.TB) string {
	t.Helper()
	gitTestEnv(t)
	dir := filepath.Join(t.TempDir(), "repo")
	gitTestRun(t, t.TempDir(), "init", "-q", dir)
	gitTestWrite(t, filepath.Join(dir, "README.md"), "hello\n")
	gitTestRun(t, dir, "add", "README.md")
	gitTestRun(t, dir, "commit", "-q", "-m", "init")
	return dir
}

func gitTestWrite(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func gitTestOpen(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, DefaultRef)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func gitTestCommit(t testing.TB, s *Store, base string, files map[string]string) string {
	t.Helper()
	ch := Change{Files: map[string][]byte{}, Message: "test"}
	for p, c := range files {
		ch.Files[p] = []byte(c)
	}
	h, err := s.Commit(context.Background(), base, ch)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func gitTestHead(t testing.TB, s *Store) *Snapshot {
	t.Helper()
	sn, err := s.Head()
	if err != nil {
		t.Fatal(err)
	}
	return sn
}

func gitTestRead(t testing.TB, sn *Snapshot, p string) string {
	t.Helper()
	b, ok, err := sn.Read(p)
	if err != nil || !ok {
		t.Fatalf("Read(%q) = ok %v, err %v", p, ok, err)
	}
	return string(b)
}

// gitTestFsck checks the repository with git's strictest checks.
func gitTestFsck(t testing.TB, dir string) {
	t.Helper()
	if out := gitTestRun(t, dir, "fsck", "--strict", "--no-dangling", "--no-progress"); out != "" {
		t.Errorf("git fsck: %s", out)
	}
}

func TestGitFirstCommitAndRead(t *testing.T) {
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	if s.Ref() != DefaultRef {
		t.Errorf("Ref() = %q", s.Ref())
	}
	sn := gitTestHead(t, s)
	if sn.Commit() != "" {
		t.Errorf("empty state: Commit() = %q", sn.Commit())
	}
	if _, ok, err := sn.Read("pipelines/training.json"); ok || err != nil {
		t.Errorf("empty state: Read = %v, %v", ok, err)
	}
	if names, err := sn.List(""); len(names) != 0 || err != nil {
		t.Errorf("empty state: List = %v, %v", names, err)
	}
	if log, err := s.Log(0); len(log) != 0 || err != nil {
		t.Errorf("empty state: Log = %v, %v", log, err)
	}

	files := map[string]string{
		"pipelines/training.json":       `{"version": 1}` + "\n",
		"runs/202611/20261123-1.json":   `{"id": "20261123-1"}` + "\n",
		"cache/3f/3fa2c1.json":          `{"key": "3fa2c1"}` + "\n",
		"models/fraud/1.0.0/deep.json":  "deep\n",
		"top.json":                      "top\n",
		"stages/fraud-detector.json":    "",
		"runs/202611/20261123-2.json":   "second\n",
		"models/fraud/1.0.0/other.json": "other\n",
	}
	c1, err := s.Commit(context.Background(), "", Change{Files: gitTestBytes(files), Message: "zen apply: source 1234abc\n\nmore lines"})
	if err != nil {
		t.Fatal(err)
	}
	sn = gitTestHead(t, s)
	if sn.Commit() != c1 {
		t.Errorf("Head().Commit() = %q, want %q", sn.Commit(), c1)
	}
	for p, want := range files {
		if got := gitTestRead(t, sn, p); got != want {
			t.Errorf("Read(%q) = %q, want %q", p, got, want)
		}
		if got := gitTestRun(t, dir, "show", "refs/zen/state:"+p); got != strings.TrimSpace(want) {
			t.Errorf("git show refs/zen/state:%s = %q, want %q", p, got, want)
		}
	}
	for _, p := range []string{"nope.json", "runs/202611/nope.json", "cache/zz/x.json"} {
		if b, ok, err := sn.Read(p); ok || err != nil || b != nil {
			t.Errorf("Read(%q) = %q, %v, %v; want absent", p, b, ok, err)
		}
	}
	// A path through a file is a state edited by hand: the writer refuses
	// it, so the reader does too.
	if _, _, err := sn.Read("top.json/below"); err == nil || !strings.Contains(err.Error(), "top.json/below: top.json is a file, not a folder") {
		t.Errorf("Read of a path through a file: err = %v", err)
	}
	if _, _, err := sn.Read("runs/202611"); err == nil || !strings.Contains(err.Error(), "not a file") {
		t.Errorf("Read of a directory: err = %v", err)
	}
	if _, _, err := sn.Read("../x"); err == nil {
		t.Error("Read(../x): no error")
	}

	log, err := s.Log(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].Commit != c1 || log[0].Message != "zen apply: source 1234abc\n\nmore lines" ||
		log[0].Author != "Zen Test <zen-test@example.com>" || time.Since(log[0].When) > time.Minute {
		t.Errorf("Log = %+v", log)
	}

	// The real git reads it.
	if got := gitTestRun(t, dir, "rev-parse", "refs/zen/state"); got != c1 {
		t.Errorf("git rev-parse = %s, want %s", got, c1)
	}
	if got := gitTestRun(t, dir, "log", "--format=%H %an <%ae> %s", "refs/zen/state"); got != c1+" Zen Test <zen-test@example.com> zen apply: source 1234abc" {
		t.Errorf("git log = %q", got)
	}
	if got := gitTestRun(t, dir, "rev-list", "--parents", "refs/zen/state"); got != c1 {
		t.Errorf("first commit has parents: %q", got)
	}
	if got := gitTestRun(t, dir, "ls-tree", "--name-only", "-r", "refs/zen/state"); got != strings.Join(gitTestSorted(files), "\n") {
		t.Errorf("git ls-tree -r:\n%s", got)
	}
	if got := gitTestRun(t, dir, "ls-tree", "refs/zen/state", "top.json"); !strings.HasPrefix(got, "100644 blob ") {
		t.Errorf("mode of top.json: %q", got)
	}
	gitTestFsck(t, dir)
}

func gitTestBytes(files map[string]string) map[string][]byte {
	m := map[string][]byte{}
	for p, c := range files {
		m[p] = []byte(c)
	}
	return m
}

func gitTestSorted(files map[string]string) []string {
	var ps []string
	for p := range files {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

func TestGitListWalkSorted(t *testing.T) {
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	// "a-b.json" < "a.json" < "a/…": a plain sort of names would visit the
	// directory a before a-b.json; git's tree order does not.
	files := map[string]string{
		"b.json": "", "a.json": "", "a-b.json": "", "a/x.json": "", "a/b/c.json": "", "a/a.json": "",
		"a0": "", "z/y/x/w.json": "",
	}
	gitTestCommit(t, s, "", files)
	sn := gitTestHead(t, s)

	var all []string
	if err := sn.Walk("", func(p string) error { all = append(all, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := gitTestSorted(files); !slices.Equal(all, want) {
		t.Errorf("Walk(\"\") = %q, want %q", all, want)
	}

	tests := []struct {
		dir        string
		list, walk []string
	}{
		{"", []string{"a", "a-b.json", "a.json", "a0", "b.json", "z"}, nil},
		{".", []string{"a", "a-b.json", "a.json", "a0", "b.json", "z"}, nil},
		{"a", []string{"a.json", "b", "x.json"}, []string{"a/a.json", "a/b/c.json", "a/x.json"}},
		{"a/", []string{"a.json", "b", "x.json"}, []string{"a/a.json", "a/b/c.json", "a/x.json"}},
		{"z/y", []string{"x"}, []string{"z/y/x/w.json"}},
		{"missing", nil, nil},
		{"a/missing/deeper", nil, nil},
	}
	for _, tt := range tests {
		names, err := sn.List(tt.dir)
		if err != nil || !slices.Equal(names, tt.list) {
			t.Errorf("List(%q) = %q, %v; want %q", tt.dir, names, err, tt.list)
		}
		if tt.dir == "" || tt.dir == "." {
			continue
		}
		var got []string
		if err := sn.Walk(tt.dir, func(p string) error { got = append(got, p); return nil }); err != nil || !slices.Equal(got, tt.walk) {
			t.Errorf("Walk(%q) = %q, %v; want %q", tt.dir, got, err, tt.walk)
		}
	}
	if _, err := sn.List("a.json"); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("List of a file: %v", err)
	}

	// fn's error stops the walk; fs.SkipAll stops it quietly.
	boom := errors.New("boom")
	n := 0
	if err := sn.Walk("", func(string) error { n++; return boom }); !errors.Is(err, boom) || n != 1 {
		t.Errorf("Walk with an error: %v after %d", err, n)
	}
	n = 0
	if err := sn.Walk("", func(string) error { n++; return fs.SkipAll }); err != nil || n != 1 {
		t.Errorf("Walk with SkipAll: %v after %d", err, n)
	}

	// The empty state lists and walks as empty.
	empty := &Snapshot{s: s}
	if names, err := empty.List("a"); names != nil || err != nil {
		t.Errorf("empty List = %v, %v", names, err)
	}
	if err := empty.Walk("", func(string) error { return boom }); err != nil {
		t.Errorf("empty Walk = %v", err)
	}
}

func TestGitUpdateRewritesOnlyChangedPaths(t *testing.T) {
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	c1 := gitTestCommit(t, s, "", map[string]string{
		"cache/3f/a.json": "a", "cache/40/b.json": "b", "runs/202610/r1.json": "r1", "pipelines/p.json": "p1",
	})
	c2 := gitTestCommit(t, s, c1, map[string]string{"runs/202611/r2.json": "r2", "pipelines/p.json": "p2"})

	if got := gitTestRun(t, dir, "rev-parse", c2+"^"); got != c1 {
		t.Errorf("parent of %s = %s, want %s", c2, got, c1)
	}
	// Unchanged subtrees keep their hashes; changed ones are new.
	for _, p := range []string{"cache", "runs/202610"} {
		if a, b := gitTestRun(t, dir, "rev-parse", c1+":"+p), gitTestRun(t, dir, "rev-parse", c2+":"+p); a != b {
			t.Errorf("%s: tree %s became %s", p, a, b)
		}
	}
	if a, b := gitTestRun(t, dir, "rev-parse", c1+":runs"), gitTestRun(t, dir, "rev-parse", c2+":runs"); a == b {
		t.Error("runs: tree not rewritten")
	}
	sn := gitTestHead(t, s)
	for p, want := range map[string]string{"cache/3f/a.json": "a", "cache/40/b.json": "b", "runs/202610/r1.json": "r1", "runs/202611/r2.json": "r2", "pipelines/p.json": "p2"} {
		if got := gitTestRead(t, sn, p); got != want {
			t.Errorf("Read(%q) = %q, want %q", p, got, want)
		}
	}
	// A snapshot stays at its commit.
	old, err := s.snapshot(plumbing.NewHash(c1))
	if err != nil {
		t.Fatal(err)
	}
	if got := gitTestRead(t, old, "pipelines/p.json"); got != "p1" {
		t.Errorf("old snapshot reads %q", got)
	}
	log, err := s.Log(0)
	if err != nil || len(log) != 2 || log[0].Commit != c2 || log[1].Commit != c1 {
		t.Errorf("Log(0) = %+v, %v", log, err)
	}
	if log, err := s.Log(1); err != nil || len(log) != 1 || log[0].Commit != c2 {
		t.Errorf("Log(1) = %+v, %v", log, err)
	}
	gitTestFsck(t, dir)
}

// Reading a record, and committing one, costs the trees on its path, not
// the size of the state.
func TestGitReadsFollowThePath(t *testing.T) {
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	files := map[string]string{}
	for i := range 300 {
		files[fmt.Sprintf("runs/2026%02d/r%04d.json", i%12+1, i)] = fmt.Sprint(i)
		files[fmt.Sprintf("cache/%02x/k%04d.json", i%64, i)] = fmt.Sprint(i)
	}
	c1 := gitTestCommit(t, s, "", files)
	// Each count starts from a Store that has decoded no tree yet.
	fresh := func() (*Store, *Snapshot) {
		s := gitTestOpen(t, dir)
		sn := gitTestHead(t, s)
		s.reads.Store(0)
		return s, sn
	}

	s, sn := fresh()
	if got := gitTestRead(t, sn, "runs/202605/r0004.json"); got != "4" {
		t.Fatalf("read %q", got)
	}
	if n := s.reads.Load(); n != 4 { // root, runs, runs/202605, the blob
		t.Errorf("Read loaded %d objects, want 4", n)
	}
	s.reads.Store(0)
	if got := gitTestRead(t, sn, "runs/202605/r0016.json"); got != "16" {
		t.Fatalf("read %q", got)
	}
	if n := s.reads.Load(); n != 1 { // the trees are decoded already
		t.Errorf("a second Read under the same folder loaded %d objects, want 1", n)
	}
	s, sn = fresh()
	if _, ok, _ := sn.Read("cache/zz/nope.json"); ok {
		t.Fatal("found a missing file")
	}
	if n := s.reads.Load(); n != 2 { // root, cache
		t.Errorf("Read of a missing file loaded %d objects, want 2", n)
	}
	s, _ = fresh()
	s.reads.Store(0)
	if _, err := s.Commit(context.Background(), c1, Change{Files: map[string][]byte{"runs/202605/new.json": []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if n := s.reads.Load(); n != 4 { // the commit, root, runs, runs/202605
		t.Errorf("Commit loaded %d objects, want 4", n)
	}
	s, _ = fresh()
	s.reads.Store(0)
	var walked int
	if err := gitTestHead(t, s).Walk("runs", func(string) error { walked++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n := s.reads.Load(); walked != 301 || n != 2+1+12 { // commit, root, runs, 12 months; no blobs
		t.Errorf("Walk visited %d files loading %d objects", walked, n)
	}
}

func TestGitCompareAndSwap(t *testing.T) {
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	c1 := gitTestCommit(t, s, "", map[string]string{"pipelines/training.json": "t1", "pipelines/other.json": "o1"})
	// Another apply records a new fingerprint of training.
	c2 := gitTestCommit(t, s, c1, map[string]string{"pipelines/training.json": "t2", "models/m/1.json": "m"})

	moved := []struct {
		name  string
		guard []string
	}{
		{"same file", []string{"pipelines/other.json", "pipelines/training.json"}},
		{"directory", []string{"pipelines"}},
		{"whole state", []string{""}},
		{"file added", []string{"models/m/1.json"}},
	}
	for _, tt := range moved {
		_, err := s.Commit(context.Background(), c1, Change{
			Files: map[string][]byte{"pipelines/training.json": []byte("t3"), "runs/202611/r.json": []byte("r")},
			Guard: tt.guard,
		})
		if !errors.Is(err, ErrStateMoved) {
			t.Fatalf("%s: err = %v, want ErrStateMoved", tt.name, err)
		}
		for _, want := range []string{"refs/zen/state", c1[:12], c2[:12], "state moved, plan again"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q does not say %q", tt.name, err, want)
			}
		}
		t.Logf("%s: %v", tt.name, err)
	}
	if _, err := s.Commit(context.Background(), c1, Change{Files: map[string][]byte{"x": nil}, Guard: []string{"pipelines/training.json"}}); err == nil ||
		!strings.Contains(err.Error(), "moved from "+c1[:12]+" to "+c2[:12]+" and changed pipelines/training.json") {
		t.Errorf("error does not name the path: %v", err)
	}
	if got := gitTestHead(t, s).Commit(); got != c2 {
		t.Fatalf("a refused change moved the ref to %s", got)
	}

	// From an empty base, too.
	if _, err := s.Commit(context.Background(), "", Change{Files: map[string][]byte{"x": nil}, Guard: []string{"pipelines/training.json"}}); !errors.Is(err, ErrStateMoved) ||
		!strings.Contains(err.Error(), "(no state)") {
		t.Errorf("empty base: %v", err)
	}

	// No overlap: the change is replayed on top of c2.
	c3, err := s.Commit(context.Background(), c1, Change{
		Files: map[string][]byte{"pipelines/other.json": []byte("o2"), "runs/202611/r.json": []byte("r")},
		Guard: []string{"pipelines/other.json", "pipelines/never-recorded.json", "stages"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := gitTestRun(t, dir, "rev-list", "--parents", "-n1", c3); got != c3+" "+c2 {
		t.Errorf("replayed commit's parents: %q, want %s", got, c2)
	}
	sn := gitTestHead(t, s)
	for p, want := range map[string]string{"pipelines/training.json": "t2", "pipelines/other.json": "o2", "runs/202611/r.json": "r", "models/m/1.json": "m"} {
		if got := gitTestRead(t, sn, p); got != want {
			t.Errorf("after replay: Read(%q) = %q, want %q", p, got, want)
		}
	}
	if got := gitTestRun(t, dir, "rev-list", "--count", "refs/zen/state"); got != "3" {
		t.Errorf("%s commits, want 3", got)
	}

	// Bad bases.
	if _, err := s.Commit(context.Background(), "not-a-hash", Change{}); err == nil {
		t.Error("bad base: no error")
	}
	missing := strings.Repeat("ab", 20)
	if _, err := s.Commit(context.Background(), missing, Change{Guard: []string{"x"}}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing base: %v", err)
	}
	gitTestFsck(t, dir)
}

func TestGitWorkTreeIndexAndHeadUntouched(t *testing.T) {
	dir := gitTestRepo(t)
	gitTestWrite(t, filepath.Join(dir, "staged.txt"), "staged\n")
	gitTestRun(t, dir, "add", "staged.txt")
	gitTestWrite(t, filepath.Join(dir, "README.md"), "modified, not staged\n")
	gitTestWrite(t, filepath.Join(dir, "untracked.txt"), "untracked\n")

	snap := func() []string {
		idx, err := os.ReadFile(filepath.Join(dir, ".git", "index"))
		if err != nil {
			t.Fatal(err)
		}
		return []string{
			gitTestRun(t, dir, "status", "--porcelain", "--untracked-files=all"),
			gitTestRun(t, dir, "rev-parse", "HEAD"),
			gitTestRun(t, dir, "symbolic-ref", "HEAD"),
			gitTestRun(t, dir, "diff", "--cached"),
			gitTestRun(t, dir, "diff"),
			gitTestRun(t, dir, "ls-files", "--stage"),
			gitTestRun(t, dir, "for-each-ref", "refs/heads", "refs/tags"),
			fmt.Sprintf("%x", sha256.Sum256(idx)),
		}
	}
	t.Setenv("GIT_OPTIONAL_LOCKS", "0") // git status must not refresh the index
	before := snap()

	s := gitTestOpen(t, dir)
	// Paths that also exist in the work tree, to be sure nothing lands there.
	c1 := gitTestCommit(t, s, "", map[string]string{"README.md": "state readme", "staged.txt": "x", "pipelines/p.json": "p"})
	gitTestCommit(t, s, c1, map[string]string{"untracked.txt": "y", "new/dir.json": "z"})

	after := snap()
	if !slices.Equal(before, after) {
		t.Errorf("work tree, index or HEAD changed:\nbefore %q\nafter  %q", before, after)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a state file appeared in the work tree: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "README.md")); string(b) != "modified, not staged\n" {
		t.Errorf("README.md = %q", b)
	}
	gitTestFsck(t, dir)
}

func TestGitPackedRef(t *testing.T) {
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	c1 := gitTestCommit(t, s, "", map[string]string{"pipelines/p.json": "1"})
	gitTestRun(t, dir, "pack-refs", "--all")
	gitTestRun(t, dir, "gc", "-q") // objects into a pack, too
	loose := filepath.Join(dir, ".git", "refs", "zen", "state")
	if _, err := os.Stat(loose); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("loose ref still there after pack-refs: %v", err)
	}
	if packed, _ := os.ReadFile(filepath.Join(dir, ".git", "packed-refs")); !strings.Contains(string(packed), c1+" refs/zen/state") {
		t.Fatalf("packed-refs:\n%s", packed)
	}

	s = gitTestOpen(t, dir)
	sn := gitTestHead(t, s)
	if sn.Commit() != c1 || gitTestRead(t, sn, "pipelines/p.json") != "1" {
		t.Fatalf("packed ref reads as %q", sn.Commit())
	}
	// A wrong base is still noticed when the ref is packed.
	if _, err := s.Commit(context.Background(), "", Change{Files: map[string][]byte{"pipelines/p.json": []byte("x")}, Guard: []string{"pipelines/p.json"}}); !errors.Is(err, ErrStateMoved) {
		t.Errorf("wrong base on a packed ref: %v", err)
	}
	c2 := gitTestCommit(t, s, c1, map[string]string{"pipelines/p.json": "2"})
	if b, err := os.ReadFile(loose); err != nil || string(b) != c2+"\n" {
		t.Errorf("loose ref = %q, %v", b, err)
	}
	if got := gitTestRun(t, dir, "rev-parse", "refs/zen/state"); got != c2 {
		t.Errorf("git rev-parse = %s, want %s", got, c2)
	}
	if got := gitTestRun(t, dir, "rev-parse", "refs/zen/state^"); got != c1 {
		t.Errorf("parent = %s, want %s", got, c1)
	}
	// Packing again, while the packed-refs entry is stale, keeps the new value.
	gitTestRun(t, dir, "pack-refs", "--all")
	c3 := gitTestCommit(t, gitTestOpen(t, dir), c2, map[string]string{"pipelines/q.json": "3"})
	if got := gitTestRun(t, dir, "show", "refs/zen/state:pipelines/p.json"); got != "2" {
		t.Errorf("git show = %q", got)
	}
	if got := gitTestRun(t, dir, "rev-parse", "refs/zen/state"); got != c3 {
		t.Errorf("git rev-parse = %s, want %s", got, c3)
	}
	gitTestFsck(t, dir)

	// A packed line for the ref that holds no hash is an error, not an
	// absent ref: the state would start over.
	gitTestRun(t, dir, "pack-refs", "--all")
	packed := filepath.Join(dir, ".git", "packed-refs")
	b, err := os.ReadFile(packed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(packed, []byte(strings.ReplaceAll(string(b), c3+" refs/zen/state", "not-a-hash refs/zen/state")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := gitTestOpen(t, dir).Head(); err == nil || !strings.Contains(err.Error(), "its line in packed-refs does not hold a commit hash") {
		t.Errorf("Head with a damaged packed ref: %v", err)
	}
}

func TestGitStaleLock(t *testing.T) {
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	c1 := gitTestCommit(t, s, "", map[string]string{"a.json": "a"})

	old := LockTimeout
	LockTimeout = 100 * time.Millisecond
	t.Cleanup(func() { LockTimeout = old })

	lock := filepath.Join(dir, ".git", "refs", "zen", "state.lock")
	gitTestWrite(t, lock, "")
	start := time.Now()
	_, err := s.Commit(context.Background(), c1, Change{Files: map[string][]byte{"b.json": []byte("b")}})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	if want := "another zen apply is recording; if none is running, remove " + lock; !strings.HasSuffix(err.Error(), want) {
		t.Errorf("err = %q\nwant it to end with %q", err, want)
	}
	if d := time.Since(start); d < LockTimeout {
		t.Errorf("gave up after %v, before the timeout", d)
	}
	if _, err := os.Stat(lock); err != nil {
		t.Errorf("someone else's lock was removed: %v", err)
	}
	if got := gitTestHead(t, s).Commit(); got != c1 {
		t.Errorf("ref moved to %s while locked", got)
	}
	// C git honours the same lock.
	if _, err := gitTestTry(dir, "update-ref", "refs/zen/state", c1); err == nil {
		t.Error("git update-ref ignored the lock")
	}

	os.Remove(lock)
	c2 := gitTestCommit(t, s, c1, map[string]string{"b.json": "b"})
	if got := gitTestRun(t, dir, "rev-parse", "refs/zen/state"); got != c2 {
		t.Errorf("after the lock was removed: %s, want %s", got, c2)
	}
	if _, err := os.Stat(lock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock left behind: %v", err)
	}
}

// Many writers on the same base, some sharing a Store and some with their
// own (as separate processes would be): all land, none is lost.
func TestGitConcurrentCommits(t *testing.T) {
	dir := gitTestRepo(t)
	shared := gitTestOpen(t, dir)
	c0 := gitTestCommit(t, shared, "", map[string]string{"pipelines/base.json": "0"})

	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s := shared
			if i%2 == 1 {
				var err error
				if s, err = Open(dir, DefaultRef); err != nil {
					errs[i] = err
					return
				}
			}
			p := fmt.Sprintf("pipelines/p%02d.json", i)
			_, errs[i] = s.Commit(context.Background(), c0, Change{
				Files:   map[string][]byte{p: []byte(fmt.Sprint(i)), fmt.Sprintf("runs/202611/r%02d.json", i): []byte("run")},
				Guard:   []string{p},
				Message: fmt.Sprintf("writer %d", i),
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	sn := gitTestHead(t, shared)
	var files []string
	if err := sn.Walk("", func(p string) error { files = append(files, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(files) != 1+2*n {
		t.Errorf("%d files, want %d: %q", len(files), 1+2*n, files)
	}
	for i := range n {
		if got := gitTestRead(t, sn, fmt.Sprintf("pipelines/p%02d.json", i)); got != fmt.Sprint(i) {
			t.Errorf("p%02d = %q", i, got)
		}
	}
	log, err := shared.Log(0)
	if err != nil || len(log) != n+1 {
		t.Fatalf("Log: %d entries, %v", len(log), err)
	}
	if got := gitTestRun(t, dir, "rev-list", "--count", "--first-parent", "refs/zen/state"); got != fmt.Sprint(n+1) {
		t.Errorf("git rev-list --count = %s", got)
	}
	gitTestFsck(t, dir)
}

// Writers that all change the same guarded file from the same base: only
// one may win.
func TestGitConcurrentOverlap(t *testing.T) {
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	c0 := gitTestCommit(t, s, "", map[string]string{"stages/model.json": "0"})
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Commit(context.Background(), c0, Change{
				Files: map[string][]byte{"stages/model.json": []byte(fmt.Sprint(i + 1))}, // all differ from "0"
				Guard: []string{"stages/model.json"},
			})
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrStateMoved):
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d writers won, want 1", won)
	}
	if got := gitTestRun(t, dir, "rev-list", "--count", "refs/zen/state"); got != "2" {
		t.Errorf("%s commits, want 2", got)
	}
}

func TestGitLinkedWorktree(t *testing.T) {
	dir := gitTestRepo(t)
	wt := filepath.Join(t.TempDir(), "wt")
	gitTestRun(t, dir, "worktree", "add", "-q", "-b", "feature", wt)
	gitTestWrite(t, filepath.Join(wt, "sub", "deep", "f.txt"), "x")
	wtHead := gitTestRun(t, wt, "rev-parse", "HEAD")

	main := gitTestOpen(t, dir)
	c1 := gitTestCommit(t, main, "", map[string]string{"pipelines/p.json": "from main"})

	linked := gitTestOpen(t, filepath.Join(wt, "sub", "deep"))
	sn := gitTestHead(t, linked)
	if sn.Commit() != c1 || gitTestRead(t, sn, "pipelines/p.json") != "from main" {
		t.Fatalf("the linked work tree sees %q", sn.Commit())
	}
	c2 := gitTestCommit(t, linked, c1, map[string]string{"pipelines/q.json": "from wt"})
	if got := gitTestHead(t, main).Commit(); got != c2 {
		t.Errorf("main sees %s, want %s", got, c2)
	}
	if got := gitTestRun(t, dir, "show", "refs/zen/state:pipelines/q.json"); got != "from wt" {
		t.Errorf("git show in main = %q", got)
	}
	if got := gitTestRun(t, wt, "rev-parse", "refs/zen/state"); got != c2 {
		t.Errorf("git rev-parse in the work tree = %s", got)
	}
	if b, err := os.ReadFile(filepath.Join(dir, ".git", "refs", "zen", "state")); err != nil || string(b) != c2+"\n" {
		t.Errorf("ref in the common dir = %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".git", "worktrees", "wt", "refs")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a ref was written in the work tree's own git dir: %v", err)
	}
	if got := gitTestRun(t, wt, "rev-parse", "HEAD"); got != wtHead {
		t.Errorf("work tree HEAD moved")
	}
	gitTestFsck(t, dir)
}

func TestGitOpen(t *testing.T) {
	gitTestEnv(t)
	outside := t.TempDir()
	_, err := Open(outside, DefaultRef)
	if !errors.Is(err, ErrNotRepository) || err.Error() != "not a git repository (or any parent): "+outside {
		t.Errorf("outside a repository: %v", err)
	}
	if _, err := Open(filepath.Join(outside, "missing"), DefaultRef); err == nil || errors.Is(err, ErrNotRepository) {
		t.Errorf("missing dir: %v", err)
	}

	dir := gitTestRepo(t)
	for _, ref := range []string{"zen/state", "refs/zen/state.lock", "refs/zen//state", "refs/zen/.state", "refs/worktree/zen", "refs/zen/st ate"} {
		if _, err := Open(dir, ref); err == nil {
			t.Errorf("Open(%q): no error", ref)
		}
	}
	if s, err := Open(dir, ""); err != nil || s.Ref() != DefaultRef {
		t.Errorf("Open with no ref: %v", err)
	}
	custom, err := Open(dir, "refs/zen/team-a")
	if err != nil {
		t.Fatal(err)
	}
	c := gitTestCommit(t, custom, "", map[string]string{"x": "y"})
	if got := gitTestRun(t, dir, "rev-parse", "refs/zen/team-a"); got != c {
		t.Errorf("custom ref = %s", got)
	}

	// From a subdirectory, as git searches upward.
	gitTestWrite(t, filepath.Join(dir, "a", "b", "c.txt"), "")
	if s, err := Open(filepath.Join(dir, "a", "b"), DefaultRef); err != nil || s.commonDir != filepath.Join(dir, ".git") {
		t.Errorf("from a subdirectory: %v", err)
	}

	// A bare repository.
	bare := filepath.Join(t.TempDir(), "bare.git")
	gitTestRun(t, outside, "init", "-q", "--bare", bare)
	s, err := Open(bare, DefaultRef)
	if err != nil {
		t.Fatal(err)
	}
	c = gitTestCommit(t, s, "", map[string]string{"x": "bare"})
	if got := gitTestRun(t, bare, "show", "refs/zen/state:x"); got != "bare" {
		t.Errorf("bare: git show = %q", got)
	}
	if got := gitTestRun(t, bare, "rev-parse", "refs/zen/state"); got != c {
		t.Errorf("bare: %s, want %s", got, c)
	}
}

func TestGitBadRef(t *testing.T) {
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	refFile := filepath.Join(dir, ".git", "refs", "zen", "state")
	blob := gitTestRun(t, dir, "rev-parse", "HEAD:README.md")
	missing := strings.Repeat("0123456789", 4)
	tests := []struct{ content, want string }{
		{blob + "\n", "state ref refs/zen/state: commit " + blob + ": is a blob"},
		{missing + "\n", "state ref refs/zen/state: commit " + missing + ": object missing from the repository"},
		{"", "is empty"},
		{"ref: refs/heads/main\n", "symbolic ref"},
		{"garbage\n", "does not hold a commit hash"},
	}
	for _, tt := range tests {
		gitTestWrite(t, refFile, tt.content)
		_, err := s.Head()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ref %q: Head() = %v, want %q", tt.content, err, tt.want)
		}
		if _, err := s.Commit(context.Background(), "", Change{Files: map[string][]byte{"x": nil}}); err == nil {
			t.Errorf("ref %q: Commit succeeded", tt.content)
		}
		if _, err := s.Log(0); err == nil {
			t.Errorf("ref %q: Log succeeded", tt.content)
		}
	}
}

func TestGitBadChanges(t *testing.T) {
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	c1 := gitTestCommit(t, s, "", map[string]string{"pipelines/p.json": "p"})
	bad := []map[string][]byte{
		{"": nil},
		{"/abs": nil},
		{"trailing/": nil},
		{"a//b": nil},
		{"../up": nil},
		{"a/./b": nil},
		{".git/config": nil},
		{"x/.GIT/y": nil},
		{"a": nil, "a/b": nil},
		{"pipelines": nil},                 // a directory on the state
		{"pipelines/p.json/below": nil},    // under a file on the state
		{"ok.json": nil, "pipelines": nil}, // one bad path spoils the change
	}
	for _, files := range bad {
		if _, err := s.Commit(context.Background(), c1, Change{Files: files}); err == nil {
			t.Errorf("Commit(%q): no error", slices.Collect(func(yield func(string) bool) {
				for p := range files {
					if !yield(p) {
						return
					}
				}
			}))
		} else {
			t.Log(err)
		}
	}
	if _, err := s.Commit(context.Background(), c1, Change{Guard: []string{"../x"}}); err == nil {
		t.Error("bad guard path: no error")
	}
	if got := gitTestHead(t, s).Commit(); got != c1 {
		t.Errorf("a bad change moved the ref to %s", got)
	}
	if got := gitTestRun(t, dir, "rev-list", "--count", "refs/zen/state"); got != "1" {
		t.Errorf("%s commits", got)
	}
}

func TestGitAuthor(t *testing.T) {
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	author := func(ch Change) string {
		t.Helper()
		ch.Files = map[string][]byte{"f": []byte(time.Now().String())}
		head := gitTestHead(t, s).Commit()
		h, err := s.Commit(context.Background(), head, ch)
		if err != nil {
			t.Fatal(err)
		}
		return gitTestRun(t, dir, "log", "-1", "--format=%an <%ae> %cn <%ce> %at %ai|%B", h)
	}
	if got := author(Change{}); !strings.HasPrefix(got, "Zen Test <zen-test@example.com> Zen Test <zen-test@example.com> ") ||
		!strings.HasSuffix(got, "|zen: record state") {
		t.Errorf("global config: %q", got)
	}
	gitTestRun(t, dir, "config", "user.name", "Local Name")
	if got := author(Change{}); !strings.HasPrefix(got, "Local Name <zen-test@example.com>") {
		t.Errorf("local config: %q", got)
	}
	when := time.Date(2026, 11, 23, 10, 15, 0, 0, time.FixedZone("", 3600))
	got := author(Change{Author: Signature{Name: "A <b>", Email: "a@example.com", When: when}, Message: "msg"})
	if want := fmt.Sprintf("A b <a@example.com> A b <a@example.com> %d 2026-11-23 10:15:00 +0100|msg", when.Unix()); got != want {
		t.Errorf("explicit: %q, want %q", got, want)
	}
	t.Setenv("GIT_AUTHOR_NAME", "Env Name")
	if got := author(Change{}); !strings.HasPrefix(got, "Env Name <zen-test@example.com>") {
		t.Errorf("GIT_AUTHOR_NAME: %q", got)
	}
	os.Unsetenv("GIT_AUTHOR_NAME")
	gitTestRun(t, dir, "config", "--unset", "user.name")
	t.Setenv("GIT_CONFIG_GLOBAL", filepath.Join(t.TempDir(), "none"))
	if got := author(Change{}); !strings.HasPrefix(got, "zen <zen@localhost> zen <zen@localhost>") {
		t.Errorf("no config: %q", got)
	}
	gitTestFsck(t, dir)
}

func TestGitReflog(t *testing.T) {
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	c1 := gitTestCommit(t, s, "", map[string]string{"a": "1"})
	logs := filepath.Join(dir, ".git", "logs", "refs", "zen", "state")
	if _, err := os.Stat(logs); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reflog written without core.logAllRefUpdates=always: %v", err)
	}
	gitTestRun(t, dir, "config", "core.logAllRefUpdates", "always")
	c2 := gitTestCommit(t, s, c1, map[string]string{"a": "2"})
	c3 := gitTestCommit(t, s, c2, map[string]string{"a": "3"})
	if got := gitTestRun(t, dir, "reflog", "show", "--format=%H", "refs/zen/state"); got != c3+"\n"+c2 {
		t.Errorf("git reflog = %q", got)
	}
	if got := gitTestRun(t, dir, "rev-parse", "refs/zen/state@{1}"); got != c2 {
		t.Errorf("refs/zen/state@{1} = %s", got)
	}
}

// BenchmarkCommit writes one record into states of different sizes: the
// cost follows the trees on the record's path, not the number of records.
func BenchmarkCommit(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			dir := gitTestRepo(b)
			s := gitTestOpen(b, dir)
			files := map[string][]byte{}
			for i := range n {
				if i%2 == 0 {
					id := fmt.Sprintf("2026%02d%02d-%06d", i%12+1, i%28+1, i)
					files["runs/"+id[:6]+"/"+id+".json"] = fmt.Appendf(nil, `{"version":1,"id":%q,"status":"succeeded"}`+"\n", id)
				} else {
					key := fmt.Sprintf("%064x", sha256.Sum256(fmt.Append(nil, i)))
					files["cache/"+key[:2]+"/"+key+".json"] = fmt.Appendf(nil, `{"version":1,"key":%q}`+"\n", key)
				}
			}
			base, err := s.Commit(context.Background(), "", Change{Files: files, Message: "setup"})
			if err != nil {
				b.Fatal(err)
			}
			s.reads.Store(0)
			i := 0
			for b.Loop() {
				id := fmt.Sprintf("20261123-bench-%06d", i)
				base, err = s.Commit(context.Background(), base, Change{
					Files: map[string][]byte{"runs/202611/" + id + ".json": fmt.Appendf(nil, `{"version":1,"id":%q}`+"\n", id)},
					Guard: []string{"pipelines/training.json"},
				})
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(s.reads.Load())/float64(i), "objects-read/op")
		})
	}
}

// A nil content removes a file, and the folders it leaves empty; removing
// a file that is not there changes nothing.
func TestGitRemove(t *testing.T) {
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	c1 := gitTestCommit(t, s, "", map[string]string{
		"submitted/a.json": "a", "submitted/b.json": "b", "runs/202611/r1.json": "r1",
	})
	c2, err := s.Commit(context.Background(), c1, Change{Files: map[string][]byte{"submitted/a.json": nil, "runs/202611/r2.json": []byte("r2"), "nothere/x.json": nil}})
	if err != nil {
		t.Fatal(err)
	}
	sn := gitTestHead(t, s)
	if _, ok, err := sn.Read("submitted/a.json"); ok || err != nil {
		t.Errorf("submitted/a.json still there (%v)", err)
	}
	if got := gitTestRead(t, sn, "submitted/b.json"); got != "b" {
		t.Errorf("submitted/b.json = %q", got)
	}
	if got := gitTestRun(t, dir, "ls-tree", "--name-only", c2); got != "runs\nsubmitted" {
		t.Errorf("root of %s lists %q", c2, got)
	}
	// An empty file is a file, not a removal.
	c3, err := s.Commit(context.Background(), c2, Change{Files: map[string][]byte{"submitted/b.json": nil, "empty": {}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := gitTestRun(t, dir, "ls-tree", "--name-only", c3); got != "empty\nruns" {
		t.Errorf("root of %s lists %q, want the emptied folder gone", c3, got)
	}
	gitTestFsck(t, dir)
}

// A cancelled context ends the wait for another writer's lock file at
// once, long before LockTimeout.
func TestGitLockCancel(t *testing.T) {
	dir := gitTestRepo(t)
	s := gitTestOpen(t, dir)
	c1 := gitTestCommit(t, s, "", map[string]string{"a.json": "a"})

	old := LockTimeout
	LockTimeout = time.Hour
	t.Cleanup(func() { LockTimeout = old })

	lock := filepath.Join(dir, ".git", "refs", "zen", "state.lock")
	gitTestWrite(t, lock, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Commit(ctx, c1, Change{Files: map[string][]byte{"b.json": []byte("b")}})
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopped waiting for another writer's "+lock) {
			t.Fatalf("err = %v, want context.Canceled naming the lock file", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Commit ignored the cancelled context")
	}
	if got := gitTestHead(t, s).Commit(); got != c1 {
		t.Errorf("ref moved to %s", got)
	}
}
