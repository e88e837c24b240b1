package ui

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/state"
)

// demoCUE declares a pipeline of two steps whose second makes a model
// version, which a gated stage holds.
const demoCUE = `package zen

pipelines: demo: {
	parameters: quality: 8
	steps: {
		prep: {
			run: ["sh", "-c", "echo preparing; echo data > $ZEN_OUTPUTS/data"]
			outputs: data: type: "file"
		}
		train: {
			run: ["sh", "-c", "mkdir $ZEN_OUTPUTS/model && echo weights $(cat $ZEN_PARAMS) > $ZEN_OUTPUTS/model/weights.bin && echo '{\"score\": 0.8}' > $ZEN_METRICS"]
			inputs: data: steps.prep.outputs.data
			parameters: quality: pipelines.demo.parameters.quality
			outputs: model: {type: "model", model: "scorer"}
		}
	}
}

models: scorer: {
	versions: {"1.0.0": {}}
	stages: production: "1.0.0"
	gates: production: "score >= 0.5"
}
`

// repo makes a committed git repository holding files, with git
// configured for the test alone, and opens it as a project with no
// remote.
func repo(t *testing.T, files map[string]string) (string, *zen.Project) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git")
	}
	dir, home := t.TempDir(), t.TempDir()
	cfg := filepath.Join(home, ".gitconfig")
	if err := os.WriteFile(cfg, []byte("[user]\n\tname = Zen Test\n\temail = test@zen.invalid\n[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n[gc]\n\tauto = 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"HOME": home, "GIT_CONFIG_GLOBAL": cfg, "GIT_CONFIG_NOSYSTEM": "1"} {
		t.Setenv(k, v)
	}
	files[".gitignore"] = "/cosign.pub\n"
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "init", "-q")
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-qm", "demo pipeline")
	p, err := zen.Open(dir, zen.Options{Remote: "none"})
	if err != nil {
		t.Fatal(err)
	}
	return dir, p
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// apply plans with opts and applies, returning the runs' ids.
func apply(t *testing.T, p *zen.Project, opts zen.PlanOptions) []string {
	t.Helper()
	ctx := context.Background()
	opts.ForApply = true
	pl, err := p.Plan(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Apply(ctx, pl, zen.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range res.Runs {
		ids = append(ids, r.ID)
	}
	return ids
}

// server serves p's dashboard for the test.
func server(t *testing.T, p *zen.Project, opts Options) *httptest.Server {
	t.Helper()
	h, err := New(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// get fetches path and checks its status; it returns the body.
func get(t *testing.T, srv *httptest.Server, path string, status int) string {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %d, want %d\n%s", path, resp.StatusCode, status, b)
	}
	return string(b)
}

// has fails unless body holds each of want.
func has(t *testing.T, what, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
	if t.Failed() {
		t.Logf("%s:\n%s", what, body)
		t.FailNow()
	}
}

// Every page the issue names shows what it should, with the selectors
// browser tests use, on a repository applied twice (once as an
// experiment).
func TestPages(t *testing.T) {
	_, p := repo(t, map[string]string{"zen.cue": demoCUE})
	first := apply(t, p, zen.PlanOptions{})[0]
	second := apply(t, p, zen.PlanOptions{Sets: []string{"demo.quality=9"}})[0]
	srv := server(t, p, Options{})

	runs := get(t, srv, "/", 200)
	has(t, "runs list", runs, `id="runs"`, `<a class="run" href="/runs/`+first+`">`, `data-run="`+second+`"`,
		`<td class="status">succeeded</td>`, `class="cache-hits">1/2<`, `class="stack">local<`, `class="duration">`)
	if strings.Index(runs, second) > strings.Index(runs, first) {
		t.Errorf("runs list: %s listed after %s, want newest first", second, first)
	}

	run := get(t, srv, "/runs/"+first, 200)
	r, err := p.Run(first)
	if err != nil {
		t.Fatal(err)
	}
	prep, train := r.Steps["prep"], r.Steps["train"]
	has(t, "run page", run, `id="dag"`, `id="dag-data"`, `"from":"prep"`, `"to":"train"`,
		`class="step status-succeeded" data-step="prep"`, `data-step="train"`,
		prep.CacheKey, prep.Outputs["data"].Digest, train.Outputs["model"].Digest, prep.Log.Digest,
		`data-metric="score"`, `>0.8<`, `data-param="quality"`, `href="/runs/`+first+`/steps/prep#log"`)
	if strings.Contains(run, "Missing from") {
		t.Errorf("run page says an artifact is missing:\n%s", run)
	}
	has(t, "run by prefix", get(t, srv, "/runs/"+first[:len(first)-2], 200), `data-run="`+first+`"`)
	has(t, "latest run", get(t, srv, "/runs/latest", 200), `data-run="`+second+`"`)

	has(t, "step page", get(t, srv, "/runs/"+first+"/steps/prep", 200), `<pre id="log">preparing`+"\n", prep.CacheKey)

	models := get(t, srv, "/models", 200)
	has(t, "models page", models, `data-model="scorer"`, `href="/models/scorer/versions/1.0.0"`, `href="/models/scorer/stages/production"`)

	mv, err := p.ModelVersion(zen.ModelRef{Model: "scorer", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	model := get(t, srv, "/models/scorer", 200)
	has(t, "model page", model, `data-version="1.0.0"`, `class="signature verified"`, `data-kind="stage"`, `data-stage="production"`,
		`score &gt;= 0.5: 0.8 ✓`, `href="/models/scorer/stages/production"`)

	version := get(t, srv, "/models/scorer/versions/1.0.0", 200)
	has(t, "version page", version, `id="lineage"`, `id="lineage-data"`, `"kind":"commit"`, `"kind":"run"`, `"kind":"version"`,
		`"from":"step:prep","to":"step:train"`, mv.Digest, mv.SourceCommit, `class="lineage-step" data-step="prep"`, `id="signature" class="signature verified"`)

	audit := get(t, srv, "/models/scorer/stages/production", 200)
	has(t, "audit page", audit, `id="audit"`, `class="move" data-version="1.0.0"`, `<span class="passed">passed</span>`,
		`class="signature verified"`, `class="author">Zen Test`, `/stages/scorer.json"`, mv.SourceCommit[:12]+" demo pipeline")
	rec := regexp.MustCompile(`href="(/records/[0-9a-f]{40}/stages/scorer.json)"`).FindStringSubmatch(audit)
	if rec == nil {
		t.Fatalf("audit page links no record:\n%s", audit)
	}
	has(t, "record page", get(t, srv, rec[1], 200), `id="record"`, `&#34;model_version&#34;: &#34;1.0.0&#34;`)

	metrics := get(t, srv, "/metrics?pipeline=demo&metric=train.score", 200)
	has(t, "metrics page", metrics, `id="chart"`, `id="chart-data"`, `"name":"train.score"`, `data-run="`+first+`"`, `data-run="`+second+`"`)
	has(t, "metrics page, default", get(t, srv, "/metrics", 200), `id="chart"`, `value="train.score" checked`)

	compare := get(t, srv, "/compare?a="+first+"&b="+second, 200)
	has(t, "compare page", compare, `id="params-diff"`, `id="metrics-diff"`, `class="row changed" data-name="quality"`,
		`<td class="old">8</td><td class="new">9</td>`, `class="row unchanged" data-name="train.score"`)
	has(t, "compare, default pair", get(t, srv, "/compare", 200), `class="old run" href="/runs/`+first+`"`, `class="new run" href="/runs/`+second+`"`)
}

// The server is read-only and offline: other methods than GET and HEAD
// are refused, every response forbids content from elsewhere, and no page
// or asset names a place outside the server.
func TestReadOnlyOffline(t *testing.T) {
	_, p := repo(t, map[string]string{"zen.cue": demoCUE})
	id := apply(t, p, zen.PlanOptions{})[0]
	srv := server(t, p, Options{})
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		req, _ := http.NewRequest(m, srv.URL+"/runs/"+id, strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d, Allow %q; want 405, GET, HEAD", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	resp, err := http.Head(srv.URL + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD /: %v %v", resp, err)
	}
	external := regexp.MustCompile(`(?i)(src|href|action)="(//|[a-z]+:)`)
	for _, path := range []string{"/", "/runs/" + id, "/runs/" + id + "/steps/train", "/models", "/models/scorer", "/models/scorer/versions/1.0.0",
		"/models/scorer/stages/production", "/metrics", "/compare", "/previews", "/runs/none"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy || !strings.Contains(got, "default-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", path, got)
		}
		if m := external.FindString(string(b)); m != "" {
			t.Errorf("%s names a place outside the server: %s", path, m)
		}
		for _, asset := range regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(string(b), -1) {
			get(t, srv, asset[1], 200)
		}
		if strings.Contains(string(b), "<script>") || strings.Contains(string(b), " style=") || strings.Contains(string(b), " onclick=") {
			t.Errorf("%s has inline script or style, which the policy forbids", path)
		}
	}
	// The embedded libraries are the pinned ones and make no request.
	for _, asset := range []string{"/assets/vendor/dagre.min.js", "/assets/vendor/uPlot.iife.min.js", "/assets/app.js"} {
		body := get(t, srv, asset, 200)
		if m := regexp.MustCompile(`(fetch|XMLHttpRequest|import)\(\s*["']https?:`).FindString(body); m != "" {
			t.Errorf("%s fetches from elsewhere: %s", asset, m)
		}
	}
}

// A repository with no runs: the pages say so, and are not errors.
func TestNoRuns(t *testing.T) {
	_, p := repo(t, map[string]string{"zen.cue": demoCUE})
	srv := server(t, p, Options{})
	has(t, "runs list", get(t, srv, "/", 200), `id="empty"`, "No runs are recorded on the state ref yet")
	has(t, "metrics page", get(t, srv, "/metrics", 200), `id="chart-problem"`, "No runs are recorded")
	has(t, "models page", get(t, srv, "/models", 200), `data-model="scorer"`, `class="no-versions"`)
	has(t, "compare page", get(t, srv, "/compare", 200), `id="compare-problem"`, "no runs recorded on refs/zen/state yet")
	has(t, "previews page", get(t, srv, "/previews", 200), `id="empty"`)
	has(t, "state", get(t, srv, "/api/state", 200), `"commit":""`)
}

// Unknown runs, steps, models, versions and stages are 404 pages naming
// them.
func TestNotFound(t *testing.T) {
	_, p := repo(t, map[string]string{"zen.cue": demoCUE})
	id := apply(t, p, zen.PlanOptions{})[0]
	srv := server(t, p, Options{})
	for path, want := range map[string]string{
		"/runs/20990101-000000.000-ffffff":           `no run &#34;20990101-000000.000-ffffff&#34; on refs/zen/state`,
		"/runs/" + id + "/steps/nope":                `has no step &#34;nope&#34; (steps: prep, train)`,
		"/models/nope":                               "model nope not found",
		"/models/scorer/versions/9.9.9":              "model scorer has no recorded version 9.9.9",
		"/models/scorer/stages/staging":              "stage staging of model scorer not found",
		"/compare?a=nope":                            `no run &#34;nope&#34;`,
		"/previews/nope":                             "preview of branch nope not found",
		"/nowhere":                                   "no page /nowhere",
		"/records/" + strings.Repeat("0", 40) + "/x": "not found",
	} {
		has(t, path, get(t, srv, path, http.StatusNotFound), want)
	}
	get(t, srv, "/?page=0", http.StatusBadRequest)
}

// A run whose blobs are gone from the store: its page says which
// artifacts are missing from which store, the step page says the log
// cannot be read and why, and the rest of both pages renders.
func TestMissingBlobs(t *testing.T) {
	dir, p := repo(t, map[string]string{"zen.cue": demoCUE})
	id := apply(t, p, zen.PlanOptions{})[0]
	r, err := p.Run(id)
	if err != nil {
		t.Fatal(err)
	}
	prep := r.Steps["prep"]
	for _, d := range []string{prep.Log.Digest, prep.Outputs["data"].Digest} {
		// The artifact's manifest: the store no longer holds it.
		if err := os.Remove(filepath.Join(dir, ".zen", "store", "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))); err != nil {
			t.Fatal(err)
		}
	}
	srv := server(t, p, Options{})
	run := get(t, srv, "/runs/"+id, 200)
	has(t, "run page", run, `id="dag"`, `data-step="train"`, `Missing from oci-layout `, `.zen/store: data, log</p>`, prep.CacheKey)
	step := get(t, srv, "/runs/"+id+"/steps/prep", 200)
	has(t, "step page", step, `id="log-error"`, "log "+prep.Log.Digest+" cannot be read from oci-layout ", `Missing from oci-layout`, prep.CacheKey)
	has(t, "other step", get(t, srv, "/runs/"+id+"/steps/train", 200), `<pre id="log">`)
}

// A corrupt run record: the runs list has an error row naming the
// record's path, and lists the other runs; its run page is an error page
// naming the path.
func TestCorruptRecord(t *testing.T) {
	_, p := repo(t, map[string]string{"zen.cue": demoCUE})
	good := apply(t, p, zen.PlanOptions{})[0]
	bad := "20260101-000000.000-badbad"
	if _, err := p.State().Commit(context.Background(), "", state.Change{Files: map[string][]byte{state.RunPath(bad): []byte("{not json")}, Message: "corrupt"}); err != nil {
		t.Fatal(err)
	}
	srv := server(t, p, Options{})
	runs := get(t, srv, "/", 200)
	has(t, "runs list", runs, `class="run error" data-run="`+bad+`" data-record="runs/202601/`+bad+`.json"`,
		"cannot read runs/202601/"+bad+".json: corrupt record on the state ref refs/zen/state", `<a class="run" href="/runs/`+good+`">`)
	has(t, "run page", get(t, srv, "/runs/"+bad, http.StatusInternalServerError), "corrupt record runs/202601/"+bad+".json")
	has(t, "good run", get(t, srv, "/runs/"+good, 200), `data-step="prep"`)
}

// The server reads the state on each request: after another apply, the
// runs list has the new run and /api/state names the new commit, from the
// same server.
func TestRefresh(t *testing.T) {
	_, p := repo(t, map[string]string{"zen.cue": demoCUE})
	first := apply(t, p, zen.PlanOptions{})[0]
	srv := server(t, p, Options{})
	before := get(t, srv, "/api/state", 200)
	page := get(t, srv, "/", 200)
	has(t, "runs list", page, first)
	second := apply(t, p, zen.PlanOptions{Sets: []string{"demo.quality=3"}})[0]
	after := get(t, srv, "/api/state", 200)
	if before == after {
		t.Errorf("/api/state did not change after an apply: %s", after)
	}
	head, err := p.State().Head()
	if err != nil {
		t.Fatal(err)
	}
	has(t, "state", after, `"commit":"`+head.Commit()+`"`)
	has(t, "runs list after", get(t, srv, "/", 200), `data-run="`+second+`"`, `data-state="`+head.Commit())
}

// The runs list is paged: a page reads its runs only, and links to the
// next.
func TestRunsPages(t *testing.T) {
	_, p := repo(t, map[string]string{"zen.cue": demoCUE})
	var ids []string
	ids = append(ids, apply(t, p, zen.PlanOptions{})[0])
	for _, q := range []string{"1", "2"} {
		ids = append(ids, apply(t, p, zen.PlanOptions{Sets: []string{"demo.quality=" + q}})[0])
	}
	srv := server(t, p, Options{PageSize: 2})
	one := get(t, srv, "/", 200)
	has(t, "page 1", one, ids[2], ids[1], `class="next" href="/?page=2"`, "Runs 1–2 of")
	if strings.Contains(one, ids[0]) {
		t.Errorf("page 1 lists %s", ids[0])
	}
	two := get(t, srv, "/?page=2", 200)
	has(t, "page 2", two, ids[0], `class="prev" href="/?page=1"`, "Runs 3–3 of")
}

// A pull-request preview is shown beside the default branch's run, with
// the parameters changed and the gates' verdicts on its metrics.
func TestPreviews(t *testing.T) {
	dir, p := repo(t, map[string]string{"zen.cue": demoCUE})
	base := apply(t, p, zen.PlanOptions{})[0]
	git(t, dir, "checkout", "-qb", "feature")
	if err := os.WriteFile(filepath.Join(dir, "zen.cue"), []byte(strings.Replace(demoCUE, "quality: 8", "quality: 12", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "commit", "-qam", "more quality")
	p, err := zen.Open(dir, zen.Options{Remote: "none"})
	if err != nil {
		t.Fatal(err)
	}
	pv := apply(t, p, zen.PlanOptions{Preview: "feature"})[0]
	srv := server(t, p, Options{})
	has(t, "previews", get(t, srv, "/previews", 200), `data-branch="feature"`, `href="/previews/feature"`, pv)
	has(t, "preview", get(t, srv, "/previews/feature", 200), `data-pipeline="demo"`,
		`class="preview-run"><a class="run" href="/runs/`+pv+`"`, `class="base-run"><a class="run" href="/runs/`+base+`"`,
		`class="gate passed" data-model="scorer" data-stage="production"`, `score &gt;= 0.5: 0.8 ✓`,
		`class="row changed" data-name="quality"`, `<td class="old">8</td><td class="new">12</td>`)
	has(t, "preview run", get(t, srv, "/runs/"+pv, 200), `href="/previews/feature"`)
}
