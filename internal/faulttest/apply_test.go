package faulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zen-dev/zen/internal/faultproxy"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/state"
)

// pipeline is the repository's zen.cue: make writes a file and a folder
// of new content each time it runs, use reads them.
const pipeline = `package zen

pipelines: faults: steps: {
	make: {
		run: ["sh", "-c", "echo VERSION > $ZEN_OUTPUTS/data && mkdir $ZEN_OUTPUTS/tree && head -c 50000 /dev/urandom > $ZEN_OUTPUTS/tree/blob"]
		outputs: {data: type: "file", tree: type: "dir"}
	}
	use: {
		run: ["sh", "-c", "echo USE; cat $ZEN_INPUTS/data $ZEN_INPUTS/tree/blob | wc -c > $ZEN_OUTPUTS/count"]
		inputs: {data: steps.make.outputs.data, tree: steps.make.outputs.tree}
		outputs: count: type: "file"
	}
}

default_stack: "x"
stacks: x: {orchestrator: flavor: "local", artifact_store: {flavor: "oci", repository: "REPOSITORY"}}
`

// repo is a git repository with the pipeline, its store behind a proxy.
type repo struct {
	dir   string
	env   []string
	store string // "oci <repository>", as zen names it in errors
}

func newRepo(t *testing.T, repository string) *repo {
	t.Helper()
	home := t.TempDir()
	gitconfig := filepath.Join(home, ".gitconfig")
	cfg := "[user]\n\tname = Zen Test\n\temail = test@zen.invalid\n[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n"
	if err := os.WriteFile(gitconfig, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ZEN_") && !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME="+home, "GIT_CONFIG_GLOBAL="+gitconfig, "GIT_CONFIG_NOSYSTEM=1", "NO_COLOR=1",
		"DOCKER_CONFIG="+filepath.Join(home, ".docker"), runZen+"=1")
	r := &repo{dir: t.TempDir(), env: env, store: "oci " + repository}
	r.write(t, ".gitignore", ".zen/\n/got*\n")
	r.git(t, "init", "-q")
	return r
}

func (r *repo) write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// commit writes the pipeline with make's VERSION and use's USE as given,
// and commits it.
func (r *repo) commit(t *testing.T, version, use string) {
	t.Helper()
	repository := strings.TrimPrefix(r.store, "oci ")
	r.write(t, "zen.cue", strings.NewReplacer("VERSION", version, "USE", use, "REPOSITORY", repository).Replace(pipeline))
	r.git(t, "add", "-A")
	r.git(t, "commit", "-q", "-m", version+" "+use)
}

func (r *repo) git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env = r.dir, r.env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// zen runs zen in the repository, and returns its output and how long it
// took. A run that takes more than a minute is killed.
func (r *repo) zen(t *testing.T, args ...string) (stdout, stderr string, took time.Duration, err error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Dir, cmd.Env = r.dir, r.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	begin := time.Now()
	err = cmd.Run()
	return o.String(), e.String(), time.Since(begin), err
}

// mustZen runs zen and fails the test unless it succeeds.
func (r *repo) mustZen(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, _, err := r.zen(t, args...)
	if err != nil {
		t.Fatalf("zen %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// records reads the JSON records on refs/zen/state, by path.
func (r *repo) records(t *testing.T) map[string][]byte {
	t.Helper()
	recs := map[string][]byte{}
	for line := range strings.Lines(r.git(t, "ls-tree", "-r", "refs/zen/state")) {
		// <mode> blob <id>\t<path>
		meta, p, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if f := strings.Fields(meta); ok && len(f) == 3 && f[1] == "blob" && strings.HasSuffix(p, ".json") {
			recs[p] = []byte(r.git(t, "cat-file", "blob", f[2]))
		}
	}
	return recs
}

// latestRun is the newest run record.
func latestRun(t *testing.T, recs map[string][]byte) *state.Run {
	t.Helper()
	var newest string
	for p := range recs {
		if strings.HasPrefix(p, "runs/") && path.Base(p) > path.Base(newest) {
			newest = p
		}
	}
	var run state.Run
	if err := json.Unmarshal(recs[newest], &run); err != nil {
		t.Fatalf("%s: %v", newest, err)
	}
	return &run
}

// cacheEntries lists the cache entries' paths.
func cacheEntries(recs map[string][]byte) []string {
	var ps []string
	for p := range recs {
		if strings.HasPrefix(p, "cache/") {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	return ps
}

// digests collects every "digest" the records name.
func digests(t *testing.T, recs map[string][]byte) []string {
	t.Helper()
	var ds []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "digest" {
					ds = append(ds, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	for p, b := range recs {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		walk(v)
	}
	return ds
}

// allStored fails the test unless the registry (spoken to directly) holds
// every artifact the state records, whole.
func allStored(t *testing.T, direct registry.Store, recs map[string][]byte) {
	t.Helper()
	ds := digests(t, recs)
	if len(ds) == 0 {
		t.Fatal("the state records no artifact")
	}
	for _, d := range ds {
		if ok, err := direct.Has(context.Background(), d); !ok || err != nil {
			t.Errorf("the state records %s, which the registry does not hold whole (%v)", d, err)
		}
	}
}

// TestRegistryFaultsApply runs zen apply and zen artifacts get against a
// registry behind a proxy. Transient faults on uploads and downloads are
// retried and the apply succeeds. Uploads that keep failing fail the step
// within the bound, with the store's error, and the state records no
// output or cache entry for it, and only artifacts the registry holds
// whole; the next apply, the faults gone, finishes. An artifact served
// with other content is refused, and nothing is written.
func TestRegistryFaultsApply(t *testing.T) {
	t.Parallel()
	addr := startRegistry(t)
	p := startProxy(t, addr, 1)
	direct := openRemote(t, addr+"/ml")
	r := newRepo(t, p.Addr()+"/ml")
	for round := range rounds() {
		version := string(rune('a' + round))
		t.Run("round "+version, func(t *testing.T) { applyRound(t, r, p, direct, version) })
		if t.Failed() {
			return
		}
	}
}

func applyRound(t *testing.T, r *repo, p *faultproxy.Proxy, direct registry.Store, version string) {
	// Faults on every kind of upload request, one or two of each.
	r.commit(t, version+"1", version+"1")
	p.SetRules(
		rule{Fault: drop, Method: "PATCH", Times: 1},
		rule{Fault: status, Status: 503, RetryAfter: "1", Method: "PUT", Path: "/manifests/", Times: 2},
		rule{Fault: reset, Method: "PUT", Path: "/blobs/uploads/", Times: 1},
		rule{Fault: status, Status: 500, Method: "HEAD", Path: "/blobs/", Times: 1},
	)
	scenario(t, p, func() bool {
		out := r.mustZen(t, "apply")
		if !strings.Contains(out, "succeeded: 2 ran, 0 cached") {
			t.Errorf("apply with transient upload faults:\n%s", out)
		}
		return true
	})

	// use runs again, make is cached: its outputs are looked up and
	// pulled through faults.
	r.commit(t, version+"1", version+"2")
	p.SetRules(
		rule{Fault: truncate, Path: "/blobs/sha256:", Times: 2},
		rule{Fault: reset, Method: "GET", Path: "/manifests/", Times: 1},
		rule{Fault: status, Status: 502, Method: "GET", Path: "/blobs/sha256:", Times: 1},
	)
	scenario(t, p, func() bool {
		out := r.mustZen(t, "apply")
		if !strings.Contains(out, "succeeded: 1 ran, 1 cached") {
			t.Errorf("apply with transient download faults:\n%s", out)
		}
		return true
	})

	// Every blob upload fails: make fails with the store's error, and
	// nothing of it is recorded but its failure.
	r.commit(t, version+"3", version+"3")
	before := r.records(t)
	p.SetRules(rule{Fault: status, Status: 503, Method: "PATCH"})
	scenario(t, p, func() bool {
		out, errOut, took, err := r.zen(t, "apply")
		t.Logf("apply failed after %v:\n%s%s", took.Round(time.Millisecond), out, errOut)
		if err == nil {
			t.Fatal("apply succeeded with every blob upload failing")
		}
		if took > giveUp {
			t.Errorf("apply took %v to fail", took)
		}
		if !strings.Contains(out+errOut, "artifact store "+r.store+": push ") {
			t.Errorf("apply's output does not name the store %s and the push", r.store)
		}
		after := r.records(t)
		run := latestRun(t, after)
		mk := run.Steps["make"]
		if run.SourceCommit != strings.TrimSpace(r.git(t, "rev-parse", "HEAD")) || run.Status != state.StatusFailed || mk == nil || mk.Status != state.StatusFailed {
			t.Fatalf("latest run: %s, status %s, make %+v; want this commit's failed run, make failed", run.SourceCommit, run.Status, mk)
		}
		if len(mk.Outputs) != 0 || !strings.Contains(mk.Reason, "artifact store "+r.store) {
			t.Errorf("failed make recorded outputs %v, reason %q", mk.Outputs, mk.Reason)
		}
		if got, want := cacheEntries(after), cacheEntries(before); !slices.Equal(got, want) {
			t.Errorf("cache entries went from %v to %v", want, got)
		}
		var pl state.Pipeline
		if err := json.Unmarshal(after["pipelines/faults.json"], &pl); err != nil {
			t.Fatal(err)
		}
		if st := pl.Steps["make"]; st == nil || len(st.Outputs) != 0 {
			t.Errorf("the pipeline's record keeps outputs for make: %+v", st)
		}
		allStored(t, direct, after)
		return !t.Failed()
	})

	// The registry is back: the next apply finishes the job.
	p.SetRules()
	out := r.mustZen(t, "apply")
	if !strings.Contains(out, "succeeded: 2 ran, 0 cached") {
		t.Errorf("apply after the faults:\n%s", out)
	}
	allStored(t, direct, r.records(t))

	// Content that does not match its digest is refused, and nothing is
	// written.
	p.SetRules(rule{Fault: wrongDigest, Path: "/blobs/sha256:"})
	scenario(t, p, func() bool {
		out, errOut, _, err := r.zen(t, "artifacts", "get", "latest", "make", "tree", "-o", "got")
		if err == nil || !strings.Contains(errOut, "content does not match its digest") {
			t.Errorf("artifacts get of corrupt content: %v\n%s%s", err, out, errOut)
		}
		absent(t, filepath.Join(r.dir, "got"))
		return true
	})
	p.SetRules()
	r.mustZen(t, "artifacts", "get", "latest", "make", "tree", "-o", "got")
	if fi, err := os.Stat(filepath.Join(r.dir, "got", "blob")); err != nil || fi.Size() != 50000 {
		t.Errorf("artifacts get after the fault: %v", err)
	}
	if err := os.RemoveAll(filepath.Join(r.dir, "got")); err != nil {
		t.Fatal(err)
	}
}
