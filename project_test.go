package zen

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stacksCUE declares two stacks, b the default.
const stacksCUE = `package zen

pipelines: p: steps: s: {
	run: ["sh", "-c", "echo 1 > $ZEN_OUTPUTS/out"]
	outputs: out: type: "file"
}
stacks: {
	a: {orchestrator: flavor: "local", artifact_store: {flavor: "oci-layout", path: "store-a"}}
	b: {orchestrator: flavor: "local", artifact_store: {flavor: "oci-layout", path: "store-b"}}
}
default_stack: "b"
`

// The stack is the one named, else Options.Stack, else the clone's
// choice, else default_stack.
func TestSelectStack(t *testing.T) {
	dir := testRepo(t)
	if err := os.WriteFile(filepath.Join(dir, "zen.cue"), []byte(stacksCUE), 0o644); err != nil {
		t.Fatal(err)
	}
	pick := func(opts Options, name string) string {
		t.Helper()
		p, err := Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		st, err := p.SelectStack(name)
		if err != nil {
			return err.Error()
		}
		return st.Name
	}
	if got := pick(Options{}, ""); got != "b" {
		t.Errorf("default: %s, want b", got)
	}
	p, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.UseStack("a"); err != nil {
		t.Fatal(err)
	}
	if got := pick(Options{}, ""); got != "a" {
		t.Errorf("after UseStack(a): %s, want a", got)
	}
	if got := pick(Options{Stack: "b"}, ""); got != "b" {
		t.Errorf("Options.Stack b: %s, want b", got)
	}
	if got := pick(Options{Stack: "b"}, "a"); got != "a" {
		t.Errorf("named a: %s, want a", got)
	}
	if got, want := pick(Options{Stack: "c"}, ""), `unknown stack "c" (from ZEN_STACK); stacks: a, b`; got != want {
		t.Errorf("unknown: %q, want %q", got, want)
	}
	if err := p.UseStack("c"); err == nil || !strings.Contains(err.Error(), `unknown stack "c"`) {
		t.Errorf("UseStack(c): %v", err)
	}
}

// A layout store is named relative to Options.WorkDir where that name
// leads to it from the process's directory too; else by its full path.
func TestOpenStoreName(t *testing.T) {
	dir := testRepo(t)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ workDir, want string }{
		{"", "oci-layout " + filepath.Join(dir, ".zen/store")},
		{dir, "oci-layout " + filepath.Join(dir, ".zen/store")}, // not where the process runs
		{wd, "oci-layout " + filepath.ToSlash(mustRel(t, wd, filepath.Join(dir, ".zen/store")))},
	} {
		p, err := Open(dir, Options{WorkDir: c.workDir})
		if err != nil {
			t.Fatal(err)
		}
		st, err := p.SelectStack("")
		if err != nil {
			t.Fatal(err)
		}
		s, err := p.OpenStore(st)
		if err != nil {
			t.Fatal(err)
		}
		if s.String() != c.want {
			t.Errorf("WorkDir %q: %s, want %s", c.workDir, s, c.want)
		}
	}
}

func mustRel(t *testing.T, base, p string) string {
	t.Helper()
	r, err := filepath.Rel(base, p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The state is shared through Options.Remote, else zen.remote, else
// origin if there is one; "none" shares nothing.
func TestStateRemote(t *testing.T) {
	dir := testRepo(t)
	remote := func(opts Options) string {
		t.Helper()
		p, err := Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		return p.StateRemote()
	}
	if got := remote(Options{}); got != "" {
		t.Errorf("no remote: %q", got)
	}
	for _, c := range []struct{ remote, want string }{
		{"", "no git remote to share the state through"},
		{"none", "ZEN_REMOTE=none keeps the state local"},
	} {
		p, err := Open(dir, Options{Remote: c.remote})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.SharingRemote(); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("SharingRemote with Remote %q: %v, want %q", c.remote, err, c.want)
		}
	}
	if got := remote(Options{Remote: "elsewhere"}); got != "elsewhere" {
		t.Errorf("named: %q, want it kept for the fetch to fail on", got)
	}
	runGit(t, dir, "remote", "add", "origin", t.TempDir())
	if got := remote(Options{}); got != "origin" {
		t.Errorf("origin: %q", got)
	}
	if got := remote(Options{Remote: "none"}); got != "" {
		t.Errorf("none: %q", got)
	}
}

// Apply takes only a plan made for it, which holds the apply lock; a plan
// that is not for an apply holds nothing.
func TestApplyNeedsPlanForApply(t *testing.T) {
	dir := testRepo(t)
	p, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pl, err := p.Plan(ctx, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Apply(ctx, pl, ApplyOptions{}); err == nil || !strings.Contains(err.Error(), "PlanOptions.ForApply") {
		t.Errorf("Apply of a plain plan: %v", err)
	}
	pl, err = p.Plan(ctx, PlanOptions{ForApply: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Plan(ctx, PlanOptions{ForApply: true}); err == nil {
		t.Error("a second plan for an apply took the held lock")
	}
	if _, err := p.Apply(ctx, pl, ApplyOptions{Detach: true}); err == nil || !strings.Contains(err.Error(), "only a slurm stack's jobs run on without zen") {
		t.Errorf("Apply --detach on a local stack: %v", err)
	}
	// Apply released the lock, even refusing.
	pl, err = p.Plan(ctx, PlanOptions{ForApply: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Apply(ctx, pl, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 1 || res.StateCommit == "" {
		t.Errorf("result: %d runs, state commit %q", len(res.Runs), res.StateCommit)
	}
}
