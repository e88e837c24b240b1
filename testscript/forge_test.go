package testscript

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"go.yaml.in/yaml/v3"
)

// cmdCIRun runs a CI workflow that zen init --ci wrote, as its forge would
// for one event, line by line as written, in bash:
//
//	ci-run [-secrets DIR] FILE push BRANCH
//	ci-run [-secrets DIR] [-fork] FILE pull_request BRANCH   (GitHub)
//	ci-run [-secrets DIR] FILE merge_request BRANCH          (GitLab)
//
// FILE is .github/workflows/*.yml or .gitlab-ci.yml, in the clone in the
// current directory, whose origin is a bare repository on this machine:
// the forge's copy. push runs the pipeline for BRANCH as it is there; a
// pull (merge) request runs it for a merge commit of BRANCH into the
// default branch (the bare repository's HEAD), as the forge makes one.
// -fork makes the pull request one from a fork: GitHub then gives the
// workflow no secrets and a read-only token.
// The files of DIR are the repository's secrets (GitHub) or CI/CD
// variables (GitLab), one a file, named as the secret; on GitLab,
// NAME@file is a variable of type File, whose value in the job is a
// file's path, and NAME@protected (or NAME@file@protected) a protected
// variable, which reaches only pipelines of protected branches: here the
// default branch's pushes.
//
// Each job runs in a fresh folder under $WORK/forge, with a shallow clone
// of the commit (as actions/checkout and GitLab's runner make one), the
// forge's variables, and no other environment. The forge's own steps are
// emulated: the uses: steps (checkout, setup-go, docker login,
// upload-artifact), the image (golang), GitLab's artifacts:, and go
// itself, whose `go install .../cmd/zen@V` puts this test's zen in place.
// gh is a recorder; GitLab's API is a server on loopback that lists,
// creates and edits the notes curl sends it. Comments and notes go to
// $WORK/forge/pr-N.md or mr-N.md (the latest one) and are named on
// stdout; artifacts go to $WORK/forge/artifacts/run-N/NAME (GitHub) and
// $WORK/forge/artifacts/job-N/PATH (GitLab); a GitHub job's step summary
// to $WORK/forge/summary-JOB.md.
//
// GitHub's ${{ }} expressions and if: conditions, and GitLab's rules:, are
// evaluated by a small evaluator that fails the script on any expression,
// context, key or uses: it does not know, so that a template cannot drift
// past it. Every secret a workflow reads must be named in its head.
//
// The command fails when a job that ran failed (use ! ci-run to expect it).
func cmdCIRun(ts *testscript.TestScript, neg bool, args []string) {
	secretsDir, fork := "", false
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch {
		case args[0] == "-secrets" && len(args) > 1:
			secretsDir, args = ts.MkAbs(args[1]), args[2:]
		case args[0] == "-fork":
			fork, args = true, args[1:]
		default:
			ts.Fatalf("ci-run: unknown flag %s", args[0])
		}
	}
	if len(args) != 3 {
		ts.Fatalf("usage: ci-run [-secrets DIR] [-fork] FILE push|pull_request|merge_request BRANCH")
	}
	f := newForge(ts, secretsDir)
	file := ts.MkAbs(args[0])
	src, err := os.ReadFile(file)
	ts.Check(err)
	var ok bool
	switch {
	case filepath.Base(file) == ".gitlab-ci.yml":
		if fork {
			ts.Fatalf("ci-run: -fork is for GitHub pull requests")
		}
		ok = f.runGitLab(src, args[1], args[2])
	case filepath.Base(filepath.Dir(file)) == "workflows" && filepath.Base(filepath.Dir(filepath.Dir(file))) == ".github":
		if fork && args[1] != "pull_request" {
			ts.Fatalf("ci-run: -fork is for pull requests")
		}
		ok = f.runGitHub(src, args[1], args[2], fork)
	default:
		ts.Fatalf("ci-run: %s is neither a GitHub workflow nor .gitlab-ci.yml", args[0])
	}
	if ok == neg {
		if neg {
			ts.Fatalf("ci-run: every job succeeded")
		}
		ts.Fatalf("ci-run: a job failed")
	}
}

// forge is what a CI run sees of the forge: the bare repository, the
// secrets, and the folder the harness keeps its records in.
type forge struct {
	ts        *testscript.TestScript
	out       io.Writer
	dir       string            // $WORK/forge
	remote    string            // the bare repository
	defBr     string            // its default branch
	secrets   map[string]string // name → value
	files     map[string]bool   // the secrets that are GitLab variables of type File
	protected map[string]bool   // the secrets that are protected GitLab variables
	head      string            // the workflow file's leading comment
	zen       string            // this test's zen
	sysPath   []string          // PATH without zen, for the jobs
	registry  string            // $REGISTRY, which the login names
	run       int               // this workflow run's (pipeline's) number
	mu        sync.Mutex        // the notes API's store
}

func newForge(ts *testscript.TestScript, secretsDir string) *forge {
	f := &forge{ts: ts, out: ts.Stdout(), dir: filepath.Join(ts.Getenv("WORK"), "forge"), secrets: map[string]string{}, files: map[string]bool{}, protected: map[string]bool{}, registry: ts.Getenv("REGISTRY")}
	ts.Check(os.MkdirAll(f.dir, 0o755))
	url := strings.TrimSpace(f.git(ts.MkAbs("."), "remote", "get-url", "origin"))
	f.remote = strings.TrimPrefix(url, "file://")
	if !filepath.IsAbs(f.remote) {
		f.remote = filepath.Join(ts.MkAbs("."), f.remote)
	}
	f.defBr = strings.TrimSpace(f.git(f.remote, "symbolic-ref", "--short", "HEAD"))
	if secretsDir != "" {
		ents, err := os.ReadDir(secretsDir)
		ts.Check(err)
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(secretsDir, e.Name()))
			ts.Check(err)
			name, flags, _ := strings.Cut(e.Name(), "@")
			f.secrets[name] = string(b)
			for _, fl := range strings.Split(flags, "@") {
				switch fl {
				case "":
				case "file":
					f.files[name] = true
				case "protected":
					f.protected[name] = true
				default:
					ts.Fatalf("forge: secret %s: @%s: want @file or @protected", e.Name(), fl)
				}
			}
		}
	}
	// Runs are numbered in the order they start, as the forge does.
	counter := filepath.Join(f.dir, "runs")
	b, _ := os.ReadFile(counter)
	f.run, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	f.run++
	ts.Check(os.WriteFile(counter, []byte(strconv.Itoa(f.run)+"\n"), 0o644))
	zen, err := exec.LookPath("zen")
	ts.Check(err)
	f.zen = zen
	// The jobs' PATH has none of the programs the forge's emulation
	// gives them: zen is what the workflow installs, and go, gh and glab
	// are the harness's.
dirs:
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		for _, p := range []string{"zen", "go", "gh", "glab"} {
			if _, err := os.Stat(filepath.Join(d, p)); err == nil {
				continue dirs
			}
		}
		f.sysPath = append(f.sysPath, d)
	}
	return f
}

// git runs git for the forge itself, as the test's user.
func (f *forge) git(dir string, args ...string) string {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL="+f.ts.Getenv("GIT_CONFIG_GLOBAL"), "GIT_CONFIG_NOSYSTEM=1", "HOME="+f.ts.Getenv("HOME"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		f.ts.Fatalf("forge: git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// readHead keeps the workflow's leading comment block, where every secret
// it reads must be named.
func (f *forge) readHead(src []byte) {
	var b strings.Builder
	for _, l := range strings.Split(string(src), "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		b.WriteString(l + "\n")
	}
	f.head = b.String()
	for name := range f.secrets {
		if !f.documented(name) {
			f.ts.Fatalf("forge: secret %s is given, and the workflow's head does not name it:\n%s", name, f.head)
		}
	}
}

func (f *forge) documented(name string) bool {
	for _, w := range strings.FieldsFunc(f.head, func(r rune) bool {
		return !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) {
		if w == name {
			return true
		}
	}
	return false
}

// change is the commit a pipeline runs for: a branch's tip, or the merge
// commit of a pull (merge) request, with the ref the forge keeps it at.
type change struct {
	event  string // push, pull_request, merge_request
	branch string // pushed, or the request's source branch
	number int    // the request's number
	ref    string // where the commit is in the bare repository
	sha    string
}

// prepare finds the commit of the event, and makes the merge commit of a
// request in the bare repository as the forge does.
func (f *forge) prepare(event, branch string, refPrefix string) change {
	c := change{event: event, branch: branch}
	if event == "push" {
		c.ref = "refs/heads/" + branch
		c.sha = strings.TrimSpace(f.git(f.remote, "rev-parse", "--verify", c.ref))
		return c
	}
	// Requests are numbered in the order they are opened.
	numbers := filepath.Join(f.dir, "requests")
	b, _ := os.ReadFile(numbers)
	lines := strings.Fields(string(b))
	c.number = slices.Index(lines, branch) + 1
	if c.number == 0 {
		lines = append(lines, branch)
		c.number = len(lines)
		f.ts.Check(os.WriteFile(numbers, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	}
	scratch := filepath.Join(f.dir, "merge")
	os.RemoveAll(scratch)
	f.git(f.dir, "clone", "-q", "--no-checkout", f.remote, scratch)
	f.git(scratch, "checkout", "-q", "--detach", "origin/"+f.defBr)
	f.git(scratch, "merge", "-q", "--no-ff", "-m", fmt.Sprintf("Merge %s into %s", branch, f.defBr), "origin/"+branch)
	c.sha = strings.TrimSpace(f.git(scratch, "rev-parse", "HEAD"))
	base := fmt.Sprintf("%s/%d", refPrefix, c.number)
	c.ref = base + "/merge"
	f.git(scratch, "push", "-q", "-f", "origin", "HEAD:"+c.ref, "origin/"+branch+":"+base+"/head")
	os.RemoveAll(scratch)
	return c
}

// jobDir makes a fresh folder for a job: home, temp and the work tree's
// parent, outside every repository. It returns the job's number too, from
// 1 in the order jobs start.
func (f *forge) jobDir(job string) (string, int) {
	runs, _ := filepath.Glob(filepath.Join(f.dir, "jobs", "*"))
	n := len(runs) + 1
	dir := filepath.Join(f.dir, "jobs", fmt.Sprintf("%03d-%s", n, strings.ReplaceAll(job, " ", "-")))
	for _, d := range []string{"home", "temp", "tmp", "bin", "work"} {
		f.ts.Check(os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	return dir, n
}

// copyTree copies the regular files under src (a file or a folder) to
// dst, keeping their paths below src; it returns their paths, slash
// separated and sorted. Anything but regular files and folders fails the
// script: the jobs make none.
func (f *forge) copyTree(src, dst string) []string {
	var files []string
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%s is not a regular file", p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if rel == "." {
			out = filepath.Join(dst, filepath.Base(p))
			rel = filepath.Base(p)
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		f.ts.Fatalf("forge: artifacts: %v", err)
	}
	slices.Sort(files)
	return files
}

// install writes the forge's programs for a job into dir/bin: go, whose
// install of zen links this test's zen, and the forge's CLI recorder.
func (f *forge) install(dir string, extra map[string]string) {
	goScript := `#!/bin/bash
# go, as the CI harness has it: installing zen puts the test's zen in
# GOPATH/bin; anything else fails.
gopath="${GOPATH:-$HOME/go}"
case "$1" in
install)
	if [ $# -ne 2 ] || [[ "$2" != github.com/zen-dev/zen/cmd/zen@?* ]]; then
		echo "go (CI harness): cannot go $*" >&2; exit 2
	fi
	mkdir -p "$gopath/bin" && ln -sf ` + shq(f.zen) + ` "$gopath/bin/zen"
	echo "go: installed zen@${2#*@} (the test's zen) in $gopath/bin" >&2
	;;
env)
	if [ "$*" != "env GOPATH" ]; then echo "go (CI harness): cannot go $*" >&2; exit 2; fi
	echo "$gopath"
	;;
*)
	echo "go (CI harness): cannot go $*" >&2; exit 2
	;;
esac
`
	f.ts.Check(os.WriteFile(filepath.Join(dir, "bin", "go"), []byte(goScript), 0o755))
	for name, script := range extra {
		f.ts.Check(os.WriteFile(filepath.Join(dir, "bin", name), []byte(script), 0o755))
	}
}

// clone checks the commit out in work as the forge's runner does: a new
// repository, origin set to url, the commit fetched at depth (0: all of
// it), and checked out on branch, or detached.
func (f *forge) clone(env []string, work, url, sha, ref string, depth int, branch string) {
	run := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = work, env
		if out, err := cmd.CombinedOutput(); err != nil {
			f.ts.Fatalf("forge: checkout: git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("init", "-q")
	run("remote", "add", "origin", url)
	fetch := []string{"fetch", "-q", "--no-tags", "--prune"}
	if depth > 0 {
		fetch = append(fetch, "--depth="+strconv.Itoa(depth))
	}
	run(append(fetch, "origin", "+"+sha+":"+ref)...)
	if branch != "" {
		run("checkout", "-q", "--force", "-B", branch, ref)
	} else {
		run("checkout", "-q", "--force", "--detach", sha)
	}
	fmt.Fprintf(f.out, "checked out %s at %.12s (depth %d)\n", ref, sha, depth)
}

// shell runs script with bash in dir, a job's work tree; it returns
// whether it exited 0.
func (f *forge) shell(job, dir string, env []string, flags []string, script string) bool {
	file, err := os.CreateTemp(filepath.Join(job, "temp"), "step-*.sh")
	if err != nil {
		f.ts.Fatalf("forge: %v", err)
	}
	file.WriteString(script)
	file.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append(flags, file.Name())...)
	cmd.Dir, cmd.Env = dir, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	f.out.Write(out.Bytes())
	if err != nil {
		fmt.Fprintf(f.out, "(exit: %v)\n", err)
	}
	return err == nil
}

// noNetwork is git config that sends every https URL to a folder that is
// not there: a job reaches no host, and a URL the harness does not map
// fails at once.
func noNetwork(job string) string {
	return fmt.Sprintf("[url %q]\n\tinsteadOf = https://\n", "file://"+filepath.Join(job, "no-network")+"/")
}

// jobEnv is a job's environment: the forge's variables and the job's,
// with PATH, HOME and TMPDIR of the job, and nothing of the test's.
func (f *forge) jobEnv(dir string, path []string, vars map[string]string) []string {
	env := []string{
		"HOME=" + filepath.Join(dir, "home"),
		"TMPDIR=" + filepath.Join(dir, "tmp"),
		"PATH=" + strings.Join(append(path, f.sysPath...), string(filepath.ListSeparator)),
		"GIT_CONFIG_NOSYSTEM=1",
		"LANG=C.UTF-8",
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, k+"="+vars[k])
	}
	return env
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// dockerLogin writes a docker config.json in home, as docker login does.
func (f *forge) dockerLogin(home, registry, user, password string) {
	if f.registry == "" {
		f.ts.Fatalf("forge: the workflow logs in to %s, and the script started no registry", registry)
	}
	if registry != f.registry {
		f.ts.Fatalf("forge: the workflow logs in to %q, and the stack's registry is %q", registry, f.registry)
	}
	if user == "" || password == "" {
		f.ts.Fatalf("forge: docker login to %s: username and password required", registry)
	}
	cfg := map[string]any{"auths": map[string]any{registry: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}}}
	b, _ := json.Marshal(cfg)
	f.ts.Check(os.MkdirAll(filepath.Join(home, ".docker"), 0o700))
	f.ts.Check(os.WriteFile(filepath.Join(home, ".docker", "config.json"), b, 0o600))
	fmt.Fprintf(f.out, "logged in to %s as %s\n", registry, user)
}

// ---- GitHub Actions ----

type ghWorkflow struct {
	Name        string                `yaml:"name"`
	On          map[string]*ghTrigger `yaml:"on"`
	Permissions map[string]string     `yaml:"permissions"`
	Env         map[string]string     `yaml:"env"`
	Jobs        map[string]*ghJob     `yaml:"jobs"`
}

type ghTrigger struct {
	Branches []string `yaml:"branches"`
}

type ghJob struct {
	If          string            `yaml:"if"`
	RunsOn      string            `yaml:"runs-on"`
	Concurrency *ghConcurrency    `yaml:"concurrency"`
	Env         map[string]string `yaml:"env"`
	Steps       []ghStep          `yaml:"steps"`
}

type ghConcurrency struct {
	Group            string `yaml:"group"`
	CancelInProgress bool   `yaml:"cancel-in-progress"`
}

type ghStep struct {
	ID              string            `yaml:"id"`
	Name            string            `yaml:"name"`
	If              string            `yaml:"if"`
	Uses            string            `yaml:"uses"`
	With            map[string]string `yaml:"with"`
	Env             map[string]string `yaml:"env"`
	Run             string            `yaml:"run"`
	ContinueOnError bool              `yaml:"continue-on-error"`
}

// ghStepResult is a step as the steps context has it: its outcome
// (success, failure or skipped), its conclusion (the outcome, but success
// for a failure that continue-on-error lets pass), and its outputs.
type ghStepResult struct {
	outcome, conclusion string
	outputs             map[string]string
}

// ghContexts are the contexts a job's expressions read.
type ghContexts struct {
	github map[string]any
	runner map[string]any
	steps  map[string]*ghStepResult // by id, the steps that ran or were skipped so far
}

// runGitHub runs the workflow's jobs for an event, in the file's order.
func (f *forge) runGitHub(src []byte, event, branch string, fork bool) bool {
	f.readHead(src)
	var wf ghWorkflow
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&wf); err != nil {
		f.ts.Fatalf("forge: the workflow has what the harness does not know: %v", err)
	}
	if event != "push" && event != "pull_request" {
		f.ts.Fatalf("forge: GitHub events are push and pull_request, not %q", event)
	}
	trig, ok := wf.On[event]
	if !ok {
		fmt.Fprintf(f.out, "no workflow run: the workflow is not on %s\n", event)
		return true
	}
	if event == "push" && !branchMatches(f.ts, triggerBranches(trig), branch) {
		fmt.Fprintf(f.out, "no workflow run: on.push.branches does not match %s\n", branch)
		return true
	}
	for k := range f.files {
		f.ts.Fatalf("forge: secret %s@file: GitHub has no secrets of type File", k)
	}
	for k := range f.protected {
		f.ts.Fatalf("forge: secret %s@protected: GitHub has no protected secrets", k)
	}
	c := f.prepare(event, branch, "refs/pull")
	token := "ghs_harness-token"
	headRepo := "acme/demo"
	if fork {
		// A fork's pull request: no secrets, and a token that only reads.
		f.secrets = map[string]string{}
		token, headRepo = "ghs_harness-token-read-only", "someone/demo"
	}
	ev := map[string]any{"repository": map[string]any{"default_branch": f.defBr, "full_name": "acme/demo"}}
	ghc := map[string]any{
		"event_name": event, "sha": c.sha, "repository": "acme/demo", "token": token,
		"server_url": "https://github.com", "run_id": strconv.Itoa(f.run),
	}
	if event == "push" {
		ghc["ref"], ghc["ref_name"] = c.ref, branch
	} else {
		ghc["ref"], ghc["ref_name"] = c.ref, strings.TrimPrefix(c.ref, "refs/pull/")
		ghc["head_ref"], ghc["base_ref"] = branch, f.defBr
		ev["pull_request"] = map[string]any{
			"number": float64(c.number),
			"head":   map[string]any{"ref": branch, "repo": map[string]any{"full_name": headRepo}},
		}
	}
	ghc["event"] = ev
	from := ""
	if fork {
		from = " from fork " + headRepo
	}
	fmt.Fprintf(f.out, "workflow %s run %d on %s of %s%s (default branch %s)\n", wf.Name, f.run, event, branch, from, f.defBr)

	var order yaml.Node
	f.ts.Check(yaml.Unmarshal(src, &order))
	allOK := true
	for _, name := range jobOrder(&order) {
		if !f.runGitHubJob(name, wf.Jobs[name], &wf, c, ghc, ev) {
			allOK = false
		}
	}
	return allOK
}

// branchMatches applies on.push.branches: none is every branch; "**" is
// every branch; a name without glob characters is that branch.
func branchMatches(ts *testscript.TestScript, patterns []string, branch string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		switch {
		case p == "**":
			return true
		case strings.ContainsAny(p, "*?[]!+"):
			ts.Fatalf("forge: branch filter %q: the harness knows only \"**\" and plain names", p)
		case p == branch:
			return true
		}
	}
	return false
}

func triggerBranches(t *ghTrigger) []string {
	if t == nil {
		return nil
	}
	return t.Branches
}

// jobOrder lists the jobs of a workflow in the file's order.
func jobOrder(doc *yaml.Node) []string {
	var names []string
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "jobs" {
			jobs := root.Content[i+1]
			for j := 0; j+1 < len(jobs.Content); j += 2 {
				names = append(names, jobs.Content[j].Value)
			}
		}
	}
	return names
}

func (f *forge) runGitHubJob(name string, job *ghJob, wf *ghWorkflow, c change, ghc, ev map[string]any) bool {
	if job.RunsOn != "ubuntu-latest" {
		f.ts.Fatalf("forge: job %s runs on %q: the harness is ubuntu-latest", name, job.RunsOn)
	}
	cx := &ghContexts{github: ghc, steps: map[string]*ghStepResult{}}
	status := "success"
	ctx := func(path string) (any, error) {
		return f.ghContext(path, cx)
	}
	run, err := ghCondition(job.If, ctx, status)
	f.ts.Check(err)
	if !run {
		fmt.Fprintf(f.out, "job %s: skipped (if: %s)\n", name, job.If)
		return true
	}
	fmt.Fprintf(f.out, "job %s: runs\n", name)
	if job.Concurrency != nil {
		// One run of a job at a time per group: the harness runs one.
		group, err := ghSubst(job.Concurrency.Group, ctx)
		f.ts.Check(err)
		if group == "" {
			f.ts.Fatalf("forge: job %s: concurrency without a group", name)
		}
		fmt.Fprintf(f.out, "concurrency group %s\n", group)
	}
	dir, _ := f.jobDir(name)
	work := filepath.Join(dir, "work", "demo")
	f.ts.Check(os.MkdirAll(work, 0o755))
	cx.runner = map[string]any{"os": "Linux", "temp": filepath.Join(dir, "temp")}
	evPath := filepath.Join(dir, "temp", "event.json")
	b, _ := json.Marshal(ev)
	f.ts.Check(os.WriteFile(evPath, b, 0o644))
	vars := map[string]string{
		"CI": "true", "GITHUB_ACTIONS": "true", "RUNNER_OS": "Linux",
		"RUNNER_TEMP": filepath.Join(dir, "temp"), "GITHUB_WORKSPACE": work,
		"GITHUB_EVENT_NAME": c.event, "GITHUB_EVENT_PATH": evPath,
		"GITHUB_REF": ghc["ref"].(string), "GITHUB_REF_NAME": ghc["ref_name"].(string),
		"GITHUB_SHA": c.sha, "GITHUB_REPOSITORY": "acme/demo", "GITHUB_JOB": name,
		"GITHUB_SERVER_URL": "https://github.com", "GITHUB_API_URL": "https://api.github.com",
		"GITHUB_RUN_ID": ghc["run_id"].(string),
	}
	if c.event == "pull_request" {
		vars["GITHUB_HEAD_REF"], vars["GITHUB_BASE_REF"] = c.branch, f.defBr
	}
	for _, envs := range []map[string]string{wf.Env, job.Env} {
		for k, v := range envs {
			val, err := ghSubst(v, ctx)
			f.ts.Check(err)
			vars[k] = val
		}
	}
	f.install(dir, map[string]string{"gh": f.ghRecorder(c)})
	f.ts.Check(os.WriteFile(filepath.Join(dir, "home", ".gitconfig"), []byte(noNetwork(dir)), 0o644))
	j := &ghJobRun{name: name, dir: dir, work: work, c: c}
	var summary bytes.Buffer
	ok := true
	for i, st := range job.Steps {
		label := st.Name
		if label == "" {
			label = st.Uses
		}
		if st.ID != "" {
			if _, dup := cx.steps[st.ID]; dup {
				f.ts.Fatalf("forge: job %s: two steps have id %s", name, st.ID)
			}
		}
		cond := st.If
		run, err := ghCondition(cond, ctx, status)
		f.ts.Check(err)
		if !run {
			fmt.Fprintf(f.out, "step %s: skipped (if: %s)\n", label, cond)
			if st.ID != "" {
				cx.steps[st.ID] = &ghStepResult{outcome: "skipped", conclusion: "skipped", outputs: map[string]string{}}
			}
			continue
		}
		fmt.Fprintf(f.out, "step %s\n", label)
		stepVars := map[string]string{}
		for k, v := range vars {
			stepVars[k] = v
		}
		for k, v := range st.Env {
			val, err := ghSubst(v, ctx)
			f.ts.Check(err)
			stepVars[k] = val
		}
		with := map[string]string{}
		for k, v := range st.With {
			val, err := ghSubst(v, ctx)
			f.ts.Check(err)
			with[k] = val
		}
		stepOK := true
		var outputs map[string]string
		switch {
		case st.Uses != "" && st.Run != "":
			f.ts.Fatalf("forge: step %d of job %s has both uses and run", i+1, name)
		case st.Uses != "":
			stepOK, outputs = f.ghUses(st.Uses, with, j)
		case st.Run != "":
			script, err := ghSubst(st.Run, ctx)
			f.ts.Check(err)
			files := map[string]string{}
			for _, k := range []string{"GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY"} {
				p := filepath.Join(dir, "temp", fmt.Sprintf("%s-%d", strings.ToLower(k), i))
				f.ts.Check(os.WriteFile(p, nil, 0o644))
				stepVars[k], files[k] = p, p
			}
			// GitHub's shell for run steps without shell: on Linux.
			stepOK = f.shell(dir, work, f.jobEnv(dir, j.path, stepVars), []string{"-e"}, script)
			outputs = readGitHubFile(f.ts, files["GITHUB_OUTPUT"])
			for k, v := range readGitHubFile(f.ts, files["GITHUB_ENV"]) {
				vars[k] = v
			}
			if b, _ := os.ReadFile(files["GITHUB_PATH"]); len(b) > 0 {
				j.path = append(strings.Fields(string(b)), j.path...)
			}
			b, _ := os.ReadFile(files["GITHUB_STEP_SUMMARY"])
			summary.Write(b)
		default:
			f.ts.Fatalf("forge: step %d of job %s has neither uses nor run", i+1, name)
		}
		res := &ghStepResult{outcome: "success", conclusion: "success", outputs: outputs}
		if !stepOK {
			res.outcome, res.conclusion = "failure", "failure"
			if st.ContinueOnError {
				// The step failed, and the job goes on as if it had not.
				res.conclusion = "success"
				fmt.Fprintf(f.out, "step %s: failed (continue-on-error)\n", label)
			} else {
				ok, status = false, "failure"
			}
		}
		if st.ID != "" {
			cx.steps[st.ID] = res
		}
	}
	if summary.Len() > 0 {
		f.ts.Check(os.WriteFile(filepath.Join(f.dir, "summary-"+name+".md"), summary.Bytes(), 0o644))
		fmt.Fprintf(f.out, "job %s: step summary written\n", name)
	}
	f.reportComments(c)
	if ok {
		fmt.Fprintf(f.out, "job %s: succeeded\n", name)
	} else {
		fmt.Fprintf(f.out, "job %s: failed\n", name)
	}
	return ok
}

// ghJobRun is a GitHub job as its steps change it.
type ghJobRun struct {
	name, dir, work string
	c               change
	path            []string // PATH's head: setup-go adds go and GOPATH/bin
}

// ghUses emulates the actions the workflows use; it returns whether the
// step succeeded, and its outputs.
func (f *forge) ghUses(uses string, with map[string]string, j *ghJobRun) (bool, map[string]string) {
	only := func(keys ...string) {
		for k := range with {
			if !slices.Contains(keys, k) {
				f.ts.Fatalf("forge: %s with %s: the harness does not know it", uses, k)
			}
		}
	}
	outputs := map[string]string{}
	switch uses {
	case "actions/checkout@v4":
		only("fetch-depth")
		depth := 1
		if d, ok := with["fetch-depth"]; ok {
			n, err := strconv.Atoi(d)
			f.ts.Check(err)
			depth = n
		}
		env := f.jobEnv(j.dir, j.path, nil)
		if j.c.event == "push" {
			f.clone(env, j.work, "file://"+f.remote, j.c.sha, "refs/remotes/origin/"+j.c.branch, depth, j.c.branch)
		} else {
			f.clone(env, j.work, "file://"+f.remote, j.c.sha, "refs/remotes/pull/"+strings.TrimPrefix(j.c.ref, "refs/pull/"), depth, "")
		}
	case "actions/setup-go@v5":
		only("go-version")
		if with["go-version"] == "" {
			f.ts.Fatalf("forge: %s needs go-version", uses)
		}
		fmt.Fprintf(f.out, "go %s (the harness's go)\n", with["go-version"])
		j.path = append([]string{filepath.Join(j.dir, "bin"), filepath.Join(j.dir, "home", "go", "bin")}, j.path...)
	case "docker/login-action@v3":
		only("registry", "username", "password")
		f.dockerLogin(filepath.Join(j.dir, "home"), with["registry"], with["username"], with["password"])
	case "actions/upload-artifact@v4":
		return f.uploadArtifact(with, j)
	default:
		f.ts.Fatalf("forge: uses: %s: the harness does not emulate it", uses)
	}
	return true, outputs
}

// uploadArtifact is actions/upload-artifact@v4 for one path, a file or a
// folder (whose files the artifact holds, below it), without wildcards:
// the files go to $WORK/forge/artifacts/run-N/NAME. As the action does, it
// refuses a name the run has already, and on no files warns (the
// default), fails (error) or says nothing (ignore).
func (f *forge) uploadArtifact(with map[string]string, j *ghJobRun) (bool, map[string]string) {
	for k := range with {
		if !slices.Contains([]string{"name", "path", "if-no-files-found"}, k) {
			f.ts.Fatalf("forge: actions/upload-artifact@v4 with %s: the harness does not know it", k)
		}
	}
	name, path := with["name"], with["path"]
	if name == "" {
		name = "artifact"
	}
	switch {
	case path == "":
		f.ts.Fatalf("forge: actions/upload-artifact@v4: path is required")
	case strings.ContainsAny(path, "*?[\n!"):
		f.ts.Fatalf("forge: actions/upload-artifact@v4: path %q: the harness knows one file or folder, no patterns", path)
	case strings.Contains(path, "$"):
		f.ts.Fatalf("forge: actions/upload-artifact@v4: path %q: with: is not a shell, and does not expand variables", path)
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(j.work, path)
	}
	noFiles := with["if-no-files-found"]
	if noFiles == "" {
		noFiles = "warn"
	}
	if !slices.Contains([]string{"warn", "error", "ignore"}, noFiles) {
		f.ts.Fatalf("forge: actions/upload-artifact@v4: if-no-files-found %q: want warn, error or ignore", noFiles)
	}
	dst := filepath.Join(f.dir, "artifacts", fmt.Sprintf("run-%d", f.run), name)
	if _, err := os.Stat(dst); err == nil {
		fmt.Fprintf(f.out, "Error: Failed to CreateArtifact: (409) Conflict: an artifact with this name already exists on the workflow run\n")
		return false, nil
	}
	var files []string
	if _, err := os.Stat(path); err == nil {
		files = f.copyTree(path, dst)
	}
	if len(files) == 0 {
		os.RemoveAll(dst)
		switch noFiles {
		case "warn":
			fmt.Fprintf(f.out, "Warning: No files were found with the provided path: %s. No artifacts will be uploaded.\n", with["path"])
		case "error":
			fmt.Fprintf(f.out, "Error: No files were found with the provided path: %s. No artifacts will be uploaded.\n", with["path"])
			return false, nil
		}
		return true, map[string]string{}
	}
	ids, _ := filepath.Glob(filepath.Join(f.dir, "artifacts", "run-*", "*"))
	id := strconv.Itoa(len(ids))
	fmt.Fprintf(f.out, "artifact %s uploaded: %s\n", name, strings.Join(files, " "))
	return true, map[string]string{
		"artifact-id":  id,
		"artifact-url": fmt.Sprintf("https://github.com/acme/demo/actions/runs/%d/artifacts/%s", f.run, id),
	}
}

// ghRecorder is gh for a job: it records `gh pr comment N --body-file F
// [--edit-last]` in $WORK/forge, as GitHub would keep the comments, and
// fails on anything else, and with a token that only reads (a fork's
// pull request's) as GitHub refuses it.
func (f *forge) ghRecorder(c change) string {
	return `#!/bin/bash
# gh, as the CI harness records it.
die() { echo "gh (CI harness): $*" >&2; exit 2; }
[ -n "$GH_TOKEN" ] || die "GH_TOKEN is not set"
case "$GH_TOKEN" in
ghs_harness-token) ;;
ghs_harness-token-read-only) echo "GraphQL: Resource not accessible by integration (addComment)" >&2; exit 1 ;;
*) die "GH_TOKEN is not the job's token" ;;
esac
[ "$1 $2" = "pr comment" ] || die "cannot gh $*"
pr="$3"; shift 3
[ "$pr" = ` + strconv.Itoa(c.number) + ` ] || die "no pull request $pr here"
body= edit=
while [ $# -gt 0 ]; do
	case "$1" in
	--body-file) body="$2"; shift 2 ;;
	--edit-last) edit=1; shift ;;
	*) die "gh pr comment $1: unknown" ;;
	esac
done
[ -f "$body" ] || die "--body-file $body: no such file"
dir=` + shq(f.dir) + `/comments/pr-$pr
mkdir -p "$dir"
n=$(ls "$dir" | wc -l)
if [ -n "$edit" ]; then
	[ "$n" -gt 0 ] || { echo "no comments found for current user" >&2; exit 1; }
	cp "$body" "$dir/$n.md"
	echo "edited $n" >> "$dir/../pr-$pr.log"
else
	n=$((n + 1))
	cp "$body" "$dir/$n.md"
	echo "created $n" >> "$dir/../pr-$pr.log"
fi
echo "https://github.com/acme/demo/pull/$pr#issuecomment-$n"
`
}

// reportComments names the comments a job posted, and keeps the latest
// as $WORK/forge/pr-N.md or mr-N.md.
func (f *forge) reportComments(c change) {
	if c.number == 0 {
		return
	}
	kind, noun := "pr", "pull request"
	if c.event == "merge_request" {
		kind, noun = "mr", "merge request"
	}
	logFile := filepath.Join(f.dir, "comments", fmt.Sprintf("%s-%d.log", kind, c.number))
	b, _ := os.ReadFile(logFile)
	os.Remove(logFile)
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		what, n, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		body, err := os.ReadFile(filepath.Join(f.dir, "comments", fmt.Sprintf("%s-%d", kind, c.number), n+".md"))
		f.ts.Check(err)
		latest := filepath.Join(f.dir, fmt.Sprintf("%s-%d.md", kind, c.number))
		f.ts.Check(os.WriteFile(latest, body, 0o644))
		fmt.Fprintf(f.out, "%s %d: comment %s %s\n", noun, c.number, n, what)
	}
}

func readGitHubFile(ts *testscript.TestScript, path string) map[string]string {
	b, err := os.ReadFile(path)
	ts.Check(err)
	out := map[string]string{}
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if l == "" {
			continue
		}
		if k, delim, ok := strings.Cut(l, "<<"); ok {
			var val []string
			for i++; i < len(lines) && lines[i] != delim; i++ {
				val = append(val, lines[i])
			}
			out[k] = strings.Join(val, "\n")
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			ts.Fatalf("forge: %s: bad line %q", filepath.Base(path), l)
		}
		out[k] = v
	}
	return out
}

// ghContext resolves a context path of an expression; an unknown one is
// an error.
func (f *forge) ghContext(path string, cx *ghContexts) (any, error) {
	parts := strings.Split(path, ".")
	walk := func(root map[string]any) (any, error) {
		var cur any = root
		for _, p := range parts[1:] {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("unknown context %s", path)
			}
			if cur, ok = m[p]; !ok {
				return nil, fmt.Errorf("unknown context %s", path)
			}
		}
		if _, ok := cur.(map[string]any); ok {
			return nil, fmt.Errorf("context %s is an object", path)
		}
		return cur, nil
	}
	switch parts[0] {
	case "github":
		return walk(cx.github)
	case "runner":
		if cx.runner == nil {
			return nil, fmt.Errorf("context %s: runner is not there before the job runs", path)
		}
		return walk(cx.runner)
	case "secrets":
		if len(parts) != 2 {
			return nil, fmt.Errorf("unknown context %s", path)
		}
		if !f.documented(parts[1]) {
			return nil, fmt.Errorf("the workflow reads secret %s, and its head does not name it", parts[1])
		}
		return f.secrets[parts[1]], nil // a secret not set is ''
	case "steps":
		if len(parts) < 3 {
			return nil, fmt.Errorf("unknown context %s", path)
		}
		st, ok := cx.steps[parts[1]]
		if !ok {
			return nil, fmt.Errorf("%s: no earlier step has id %s", path, parts[1])
		}
		switch {
		case len(parts) == 4 && parts[2] == "outputs":
			return st.outputs[parts[3]], nil // an output not set is ''
		case len(parts) == 3 && parts[2] == "outcome":
			return st.outcome, nil
		case len(parts) == 3 && parts[2] == "conclusion":
			return st.conclusion, nil
		}
		return nil, fmt.Errorf("unknown context %s", path)
	}
	return nil, fmt.Errorf("unknown context %s", path)
}

// ghCondition evaluates an if: (by default success()) for a job whose
// status so far is status.
func ghCondition(cond string, ctx func(string) (any, error), status string) (bool, error) {
	cond = strings.TrimSpace(cond)
	if cond == "" {
		cond = "success()"
	}
	if strings.HasPrefix(cond, "${{") && strings.HasSuffix(cond, "}}") {
		cond = strings.TrimSpace(cond[3 : len(cond)-2])
	}
	e := &ghExpr{scanner: scanner{src: cond, blanks: " \t\n"}, ctx: ctx, status: status}
	// A condition without a status function has an implied success().
	statusFn := false
	for _, fn := range []string{"success()", "failure()", "always()", "cancelled()"} {
		statusFn = statusFn || strings.Contains(cond, fn)
	}
	v, err := e.parse()
	if err != nil {
		return false, fmt.Errorf("forge: if: %s: %w", cond, err)
	}
	if !statusFn && status != "success" {
		return false, nil
	}
	return truthy(v), nil
}

// ghSubst replaces each ${{ expression }} of s by its value.
func ghSubst(s string, ctx func(string) (any, error)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${{")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return "", fmt.Errorf("forge: unclosed ${{ in %q", s)
		}
		src := strings.TrimSpace(s[i+3 : i+j])
		e := &ghExpr{scanner: scanner{src: src, blanks: " \t\n"}, ctx: ctx, status: "success"}
		v, err := e.parse()
		if err != nil {
			return "", fmt.Errorf("forge: ${{ %s }}: %w", src, err)
		}
		b.WriteString(s[:i])
		b.WriteString(ghString(v))
		s = s[i+j+2:]
	}
}

// ghExpr is GitHub's expression language, as far as the workflows use it:
// literals, context paths, == != ! && || and parentheses, and the status
// functions.
// scanner is what both forges' expression parsers read with: the source,
// where they are in it, and the blanks their syntax skips.
type scanner struct {
	src    string
	pos    int
	blanks string
}

func (e *scanner) space() {
	for e.pos < len(e.src) && strings.IndexByte(e.blanks, e.src[e.pos]) >= 0 {
		e.pos++
	}
}

// end says whether the whole source was read, blanks aside.
func (e *scanner) end() error {
	e.space()
	if e.pos != len(e.src) {
		return fmt.Errorf("unknown syntax at %q", e.src[e.pos:])
	}
	return nil
}

func (e *scanner) eat(tok string) bool {
	e.space()
	if strings.HasPrefix(e.src[e.pos:], tok) {
		e.pos += len(tok)
		return true
	}
	return false
}

type ghExpr struct {
	scanner
	ctx    func(string) (any, error)
	status string
}

func (e *ghExpr) parse() (any, error) {
	v, err := e.or()
	if err == nil {
		err = e.end()
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (e *ghExpr) or() (any, error) {
	l, err := e.and()
	for err == nil && e.eat("||") {
		var r any
		if r, err = e.and(); !truthy(l) {
			l = r
		}
	}
	return l, err
}

func (e *ghExpr) and() (any, error) {
	l, err := e.cmp()
	for err == nil && e.eat("&&") {
		var r any
		if r, err = e.cmp(); truthy(l) {
			l = r
		}
	}
	return l, err
}

func (e *ghExpr) cmp() (any, error) {
	l, err := e.unary()
	if err != nil {
		return nil, err
	}
	switch {
	case e.eat("=="):
		r, err := e.unary()
		return ghEqual(l, r), err
	case e.eat("!="):
		r, err := e.unary()
		return !ghEqual(l, r), err
	}
	e.space()
	for _, op := range []string{"<", ">"} {
		if strings.HasPrefix(e.src[e.pos:], op) {
			return nil, fmt.Errorf("operator %s: the harness does not know it", op)
		}
	}
	return l, nil
}

func (e *ghExpr) unary() (any, error) {
	if e.eat("!") {
		v, err := e.unary()
		return !truthy(v), err
	}
	return e.primary()
}

func (e *ghExpr) primary() (any, error) {
	e.space()
	if e.eat("(") {
		v, err := e.or()
		if err == nil && !e.eat(")") {
			err = fmt.Errorf("missing )")
		}
		return v, err
	}
	if e.pos < len(e.src) && e.src[e.pos] == '\'' {
		var b strings.Builder
		for e.pos++; e.pos < len(e.src); e.pos++ {
			if e.src[e.pos] == '\'' {
				if e.pos+1 < len(e.src) && e.src[e.pos+1] == '\'' {
					b.WriteByte('\'')
					e.pos++
					continue
				}
				e.pos++
				return b.String(), nil
			}
			b.WriteByte(e.src[e.pos])
		}
		return nil, fmt.Errorf("unclosed string")
	}
	start := e.pos
	for e.pos < len(e.src) && (isIdent(e.src[e.pos]) || e.src[e.pos] == '.') {
		e.pos++
	}
	word := e.src[start:e.pos]
	switch {
	case word == "":
		return nil, fmt.Errorf("unknown syntax at %q", e.src[start:])
	case word == "true", word == "false":
		return word == "true", nil
	case word == "null":
		return nil, nil
	case word[0] >= '0' && word[0] <= '9':
		n, err := strconv.ParseFloat(word, 64)
		return n, err
	}
	if e.eat("(") {
		if !e.eat(")") {
			return nil, fmt.Errorf("%s(...): the harness knows only status functions", word)
		}
		switch word {
		case "success":
			return e.status == "success", nil
		case "failure":
			return e.status == "failure", nil
		case "always":
			return true, nil
		case "cancelled":
			return false, nil
		}
		return nil, fmt.Errorf("function %s(): the harness does not know it", word)
	}
	return e.ctx(word)
}

func isIdent(c byte) bool {
	return c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case float64:
		return v != 0
	case string:
		return v != ""
	}
	return true
}

// ghEqual is GitHub's ==: strings compare ignoring case; other types are
// compared as numbers.
func ghEqual(a, b any) bool {
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok && bok {
		return strings.EqualFold(as, bs)
	}
	num := func(v any) float64 {
		switch v := v.(type) {
		case nil:
			return 0
		case bool:
			if v {
				return 1
			}
			return 0
		case float64:
			return v
		case string:
			if strings.TrimSpace(v) == "" {
				return 0
			}
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return -1e308 // NaN equals nothing
			}
			return n
		}
		return -1e308
	}
	return num(a) == num(b)
}

func ghString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case string:
		return v
	}
	return fmt.Sprint(v)
}

// ---- GitLab CI ----

// glJob is a GitLab job, after extends.
type glJob struct {
	Extends       any               `yaml:"extends"`
	Stage         string            `yaml:"stage"`
	Image         string            `yaml:"image"`
	Rules         []glRule          `yaml:"rules"`
	Variables     map[string]string `yaml:"variables"`
	BeforeScript  []string          `yaml:"before_script"`
	Script        []string          `yaml:"script"`
	AfterScript   []string          `yaml:"after_script"`
	ResourceGroup string            `yaml:"resource_group"`
	Artifacts     *glArtifacts      `yaml:"artifacts"`
}

// glArtifacts is a job's artifacts:, as far as the pipeline uses them.
type glArtifacts struct {
	Paths    []string `yaml:"paths"`
	When     string   `yaml:"when"`
	ExposeAs string   `yaml:"expose_as"`
}

type glRule struct {
	If string `yaml:"if"`
}

// glPredefined are the predefined variables the harness models, set or
// not for an event; a rule that reads another is an error.
var glPredefined = []string{
	"CI", "GITLAB_CI", "CI_PIPELINE_SOURCE", "CI_DEFAULT_BRANCH", "CI_COMMIT_BRANCH",
	"CI_COMMIT_REF_NAME", "CI_COMMIT_SHA", "CI_PROJECT_DIR", "CI_PROJECT_ID",
	"CI_PROJECT_PATH", "CI_SERVER_HOST", "CI_API_V4_URL", "CI_JOB_TOKEN",
	"CI_JOB_NAME", "CI_MERGE_REQUEST_IID", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
	"CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "CI_MERGE_REQUEST_REF_PATH", "CI_COMMIT_TAG",
	"CI_JOB_ID", "CI_JOB_URL", "CI_PIPELINE_ID",
}

// runGitLab runs the pipeline for an event: its jobs stage by stage, each
// stage only after the one before succeeded.
func (f *forge) runGitLab(src []byte, event, branch string) bool {
	f.readHead(src)
	if event != "push" && event != "merge_request" {
		f.ts.Fatalf("forge: GitLab events are push and merge_request, not %q", event)
	}
	var doc yaml.Node
	f.ts.Check(yaml.Unmarshal(src, &doc))
	root := doc.Content[0]
	raw := map[string]*yaml.Node{}
	var jobNames []string
	var stages []string
	globals := map[string]string{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i].Value, root.Content[i+1]
		switch {
		case k == "stages":
			f.ts.Check(v.Decode(&stages))
		case k == "variables":
			f.ts.Check(v.Decode(&globals))
		case k == "default" || k == "include" || k == "workflow" || k == "image" || k == "before_script" || k == "after_script":
			f.ts.Fatalf("forge: top-level %s: the harness does not know it", k)
		default:
			raw[k] = v
			if !strings.HasPrefix(k, ".") {
				jobNames = append(jobNames, k)
			}
		}
	}
	for k, v := range globals {
		if strings.Contains(v, "$") {
			f.ts.Fatalf("forge: variable %s: the harness does not expand variables in variables", k)
		}
	}

	c := f.prepare(event, branch, "refs/merge-requests")
	api := f.gitlabAPI(c)
	defer api.Close()
	pre := map[string]string{
		"CI": "true", "GITLAB_CI": "true", "CI_DEFAULT_BRANCH": f.defBr,
		"CI_COMMIT_SHA": c.sha, "CI_PROJECT_ID": "42", "CI_PROJECT_PATH": "acme/demo",
		"CI_SERVER_HOST": "gitlab.test", "CI_API_V4_URL": api.URL + "/api/v4",
		"CI_JOB_TOKEN": "job-token-read-only", "CI_PIPELINE_ID": strconv.Itoa(f.run),
	}
	if event == "push" {
		pre["CI_PIPELINE_SOURCE"], pre["CI_COMMIT_BRANCH"], pre["CI_COMMIT_REF_NAME"] = "push", branch, branch
	} else {
		pre["CI_PIPELINE_SOURCE"] = "merge_request_event"
		pre["CI_COMMIT_REF_NAME"] = branch
		pre["CI_MERGE_REQUEST_IID"] = strconv.Itoa(c.number)
		pre["CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"], pre["CI_MERGE_REQUEST_TARGET_BRANCH_NAME"] = branch, f.defBr
		pre["CI_MERGE_REQUEST_REF_PATH"] = c.ref
	}
	fmt.Fprintf(f.out, "pipeline %d on %s of %s (default branch %s)\n", f.run, pre["CI_PIPELINE_SOURCE"], branch, f.defBr)
	// Only the default branch is protected here: its pushes' pipelines
	// get the protected variables; a merge request's, from another
	// branch, do not.
	protectedRef := event == "push" && branch == f.defBr

	jobs := map[string]*glJob{}
	for _, name := range jobNames {
		jobs[name] = f.glResolve(name, raw, 0)
		if !slices.Contains(stages, jobs[name].Stage) {
			f.ts.Fatalf("forge: job %s: stage %q is not in stages", name, jobs[name].Stage)
		}
	}
	for _, st := range stages {
		stageOK := true
		for _, name := range jobNames {
			job := jobs[name]
			if job.Stage != st {
				continue
			}
			vars := map[string]string{}
			for k, v := range pre {
				vars[k] = v
			}
			for k, v := range globals {
				vars[k] = v
			}
			for k, v := range job.Variables {
				if strings.Contains(v, "$") {
					f.ts.Fatalf("forge: job %s: variable %s: the harness does not expand variables in variables", name, k)
				}
				vars[k] = v
			}
			for k, v := range f.secrets {
				if f.protected[k] && !protectedRef {
					continue
				}
				vars[k] = v // project variables win over the file's
				if f.files[k] {
					// A variable of type File: its value is a file's path.
					p := filepath.Join(f.dir, "variables", k)
					f.ts.Check(os.MkdirAll(filepath.Dir(p), 0o700))
					f.ts.Check(os.WriteFile(p, []byte(v), 0o600))
					vars[k] = p
				}
			}
			vars["CI_JOB_NAME"] = name
			if !f.glRules(name, job, vars) {
				continue
			}
			if !f.runGitLabJob(name, job, vars, c) {
				stageOK = false
			}
		}
		if !stageOK {
			fmt.Fprintf(f.out, "stage %s failed: later stages do not run\n", st)
			return false
		}
	}
	return true
}

// glResolve decodes a job with its extends merged in: hashes merge key by
// key, the job's own keys win, lists are replaced whole.
func (f *forge) glResolve(name string, raw map[string]*yaml.Node, depth int) *glJob {
	if depth > 10 {
		f.ts.Fatalf("forge: extends of %s nest too deep", name)
	}
	node, ok := raw[name]
	if !ok {
		f.ts.Fatalf("forge: extends: no %s", name)
	}
	merged := map[string]any{}
	var own map[string]any
	f.ts.Check(node.Decode(&own))
	if ext, ok := own["extends"]; ok {
		var bases []string
		switch ext := ext.(type) {
		case string:
			bases = []string{ext}
		case []any:
			for _, b := range ext {
				bases = append(bases, fmt.Sprint(b))
			}
		}
		for _, b := range bases {
			var bm map[string]any
			f.ts.Check(raw[b].Decode(&bm))
			if _, nested := bm["extends"]; nested {
				f.ts.Fatalf("forge: %s extends %s, which extends again: the harness does not know it", name, b)
			}
			deepMerge(merged, bm)
		}
	}
	deepMerge(merged, own)
	delete(merged, "extends")
	b, err := yaml.Marshal(merged)
	f.ts.Check(err)
	var job glJob
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&job); err != nil {
		f.ts.Fatalf("forge: job %s has what the harness does not know: %v", name, err)
	}
	return &job
}

func deepMerge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				deepMerge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// glRules says whether a job is in the pipeline: the first rule whose if:
// holds puts it in.
func (f *forge) glRules(name string, job *glJob, vars map[string]string) bool {
	if len(job.Rules) == 0 {
		f.ts.Fatalf("forge: job %s has no rules: the harness does not model GitLab's defaults", name)
	}
	for _, r := range job.Rules {
		if r.If == "" {
			f.ts.Fatalf("forge: job %s: a rule without if: the harness does not know it", name)
		}
		e := &glExpr{scanner: scanner{src: r.If, blanks: " "}, vars: vars}
		v, err := e.parse()
		if err != nil {
			f.ts.Fatalf("forge: job %s: rules: if: %s: %v", name, r.If, err)
		}
		if v {
			fmt.Fprintf(f.out, "job %s: runs (if: %s)\n", name, r.If)
			return true
		}
	}
	fmt.Fprintf(f.out, "job %s: not in this pipeline (no rule holds)\n", name)
	return false
}

func (f *forge) runGitLabJob(name string, job *glJob, vars map[string]string, c change) bool {
	if !strings.HasPrefix(job.Image, "golang:") {
		f.ts.Fatalf("forge: job %s: image %q: the harness is golang only", name, job.Image)
	}
	dir, n := f.jobDir(name)
	work := filepath.Join(dir, "work", "acme", "demo")
	f.ts.Check(os.MkdirAll(work, 0o755))
	vars["CI_PROJECT_DIR"] = work
	vars["CI_JOB_ID"] = strconv.Itoa(n)
	vars["CI_JOB_URL"] = fmt.Sprintf("https://gitlab.test/acme/demo/-/jobs/%d", n)
	// The golang image: go on PATH, GOPATH/bin too.
	gopath := filepath.Join(dir, "home", "go")
	vars["GOPATH"] = gopath
	path := []string{filepath.Join(dir, "bin"), filepath.Join(gopath, "bin")}
	f.install(dir, nil)

	// The runner clones with the job token, which can fetch but not push;
	// the URL a project access token makes reaches the bare repository.
	home := filepath.Join(dir, "home")
	gitcfg := noNetwork(dir)
	if tok := vars["ZEN_GITLAB_TOKEN"]; tok != "" {
		gitcfg += fmt.Sprintf("[url %q]\n\tinsteadOf = https://oauth2:%s@gitlab.test/acme/demo.git\n", "file://"+f.remote, tok)
	}
	f.ts.Check(os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(gitcfg), 0o644))
	env := f.jobEnv(dir, path, vars)
	depth := 20 // GitLab's default for new projects
	if d, ok := vars["GIT_DEPTH"]; ok {
		n, err := strconv.Atoi(d)
		f.ts.Check(err)
		depth = n
	}
	f.clone(env, work, "file://"+f.remote, c.sha, "refs/pipelines/1", depth, "")
	cmd := exec.Command("git", "remote", "set-url", "origin", "https://gitlab-ci-token:"+vars["CI_JOB_TOKEN"]+"@gitlab.test/acme/demo.git")
	cmd.Dir, cmd.Env = work, env
	if out, err := cmd.CombinedOutput(); err != nil {
		f.ts.Fatalf("forge: %v\n%s", err, out)
	}

	// GitLab's runner: before_script and script in one bash, each line as
	// a command; after_script in another, whose failure is ignored.
	script := "set -eo pipefail\nset +o noclobber\n" + strings.Join(append(append([]string{}, job.BeforeScript...), job.Script...), "\n") + "\n"
	ok := f.shell(dir, work, env, nil, script)
	if len(job.AfterScript) > 0 {
		fmt.Fprintf(f.out, "after_script of %s\n", name)
		f.shell(dir, work, env, nil, "set -eo pipefail\n"+strings.Join(job.AfterScript, "\n")+"\n")
	}
	if job.Artifacts != nil {
		f.glArtifacts(name, n, job.Artifacts, work, ok)
	}
	f.reportComments(c)
	if ok {
		fmt.Fprintf(f.out, "job %s: succeeded\n", name)
	} else {
		fmt.Fprintf(f.out, "job %s: failed\n", name)
	}
	return ok
}

// gitlabAPI is GitLab's API as far as the pipeline uses it: the merge
// request's notes, listed, created and edited with a token. The notes
// are kept in $WORK/forge/comments/mr-N.json across pipelines; a merge
// request starts with the system note GitLab writes when a branch is
// pushed, so that a pipeline finds its own note among others.
func (f *forge) gitlabAPI(c change) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		fail := func(code int, msg string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			b, _ := json.Marshal(map[string]string{"message": msg})
			w.Write(b)
		}
		base := fmt.Sprintf("/api/v4/projects/42/merge_requests/%d/notes", c.number)
		rest, ok := strings.CutPrefix(r.URL.Path, base)
		id := 0
		if ok && rest != "" {
			n, err := strconv.Atoi(strings.TrimPrefix(rest, "/"))
			if err != nil || !strings.HasPrefix(rest, "/") || n <= 0 {
				ok = false
			}
			id = n
		}
		switch {
		case c.number == 0 || !ok:
			fail(http.StatusNotFound, "404 Not Found")
			return
		case f.secrets["ZEN_GITLAB_TOKEN"] == "" || r.Header.Get("PRIVATE-TOKEN") != f.secrets["ZEN_GITLAB_TOKEN"]:
			fail(http.StatusUnauthorized, "401 Unauthorized")
			return
		}
		notes := f.loadNotes(c.number)
		switch {
		case id == 0 && r.Method == http.MethodGet:
			list, err := listNotes(notes, r.URL.Query())
			if err != nil {
				fail(http.StatusBadRequest, "400 "+err.Error())
				return
			}
			w.Header().Set("Content-Type", "application/json")
			b, _ := json.Marshal(list)
			w.Write(b)
		case id == 0 && r.Method == http.MethodPost, id != 0 && r.Method == http.MethodPut:
			if err := r.ParseForm(); err != nil || r.PostForm.Get("body") == "" {
				fail(http.StatusBadRequest, "400 body is missing")
				return
			}
			body := r.PostForm.Get("body")
			var n *glNote
			what, code := "created", http.StatusCreated
			if id == 0 {
				n = &glNote{ID: len(notes) + 1, Body: body, Author: glBot, NoteableType: "MergeRequest", NoteableIID: c.number}
				n.CreatedAt = glTime(n.ID)
				n.UpdatedAt = n.CreatedAt
				notes = append(notes, n)
			} else {
				if id > len(notes) {
					fail(http.StatusNotFound, "404 Note Not Found")
					return
				}
				n = notes[id-1]
				if n.System || n.Author.ID != glBot.ID {
					fail(http.StatusForbidden, "403 Forbidden")
					return
				}
				n.Body, n.UpdatedAt = body, glTime(len(notes)+n.ID+100)
				what, code = "edited", http.StatusOK
			}
			f.saveNotes(c.number, notes)
			dir := filepath.Join(f.dir, "comments", fmt.Sprintf("mr-%d", c.number))
			f.ts.Check(os.MkdirAll(dir, 0o755))
			f.ts.Check(os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.md", n.ID)), []byte(body), 0o644))
			lf, err := os.OpenFile(filepath.Join(f.dir, "comments", fmt.Sprintf("mr-%d.log", c.number)), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			f.ts.Check(err)
			fmt.Fprintf(lf, "%s %d\n", what, n.ID)
			lf.Close()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			b, _ := json.Marshal(n)
			w.Write(b)
		default:
			fail(http.StatusMethodNotAllowed, "405 Method Not Allowed")
		}
	}))
}

// glNote is a note as GitLab's API writes it: its fields in GitLab's
// order, id first, and, as GitLab's JSON does, with <, > and & escaped
// (\u003c), as encoding/json writes them.
type glNote struct {
	ID           int     `json:"id"`
	Type         *string `json:"type"`
	Body         string  `json:"body"`
	Attachment   *string `json:"attachment"`
	Author       glUser  `json:"author"`
	CreatedAt    string  `json:"created_at"`
	UpdatedAt    string  `json:"updated_at"`
	System       bool    `json:"system"`
	NoteableID   int     `json:"noteable_id"`
	NoteableType string  `json:"noteable_type"`
	Resolvable   bool    `json:"resolvable"`
	Confidential bool    `json:"confidential"`
	Internal     bool    `json:"internal"`
	NoteableIID  int     `json:"noteable_iid"`
}

type glUser struct {
	ID       int    `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
	State    string `json:"state"`
}

// glBot is the user of ZEN_GITLAB_TOKEN, a project access token's bot;
// glAlice pushes the branches.
var (
	glBot   = glUser{ID: 7, Username: "project_42_bot_1", Name: "zen", State: "active"}
	glAlice = glUser{ID: 2, Username: "alice", Name: "Alice", State: "active"}
)

// glTime is the n-th minute of the harness's day, as GitLab writes times.
func glTime(n int) string {
	return time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Minute).Format("2006-01-02T15:04:05.000Z")
}

func (f *forge) notesFile(mr int) string {
	return filepath.Join(f.dir, "comments", fmt.Sprintf("mr-%d.json", mr))
}

// loadNotes reads a merge request's notes, id i at index i-1.
func (f *forge) loadNotes(mr int) []*glNote {
	b, err := os.ReadFile(f.notesFile(mr))
	if os.IsNotExist(err) {
		return []*glNote{{ID: 1, Body: "added 1 commit", Author: glAlice, CreatedAt: glTime(0), UpdatedAt: glTime(0),
			System: true, NoteableType: "MergeRequest", NoteableIID: mr}}
	}
	f.ts.Check(err)
	var notes []*glNote
	f.ts.Check(json.Unmarshal(b, &notes))
	return notes
}

func (f *forge) saveNotes(mr int, notes []*glNote) {
	b, err := json.Marshal(notes)
	f.ts.Check(err)
	f.ts.Check(os.MkdirAll(filepath.Dir(f.notesFile(mr)), 0o755))
	f.ts.Check(os.WriteFile(f.notesFile(mr), b, 0o644))
}

// listNotes is GET .../notes: sort (asc, desc: the default), order_by
// (created_at: the default, updated_at), per_page (20 by default, at most
// 100) and page; any other parameter is one the harness does not know.
func listNotes(notes []*glNote, q url.Values) ([]*glNote, error) {
	for k := range q {
		if !slices.Contains([]string{"sort", "order_by", "per_page", "page"}, k) {
			return nil, fmt.Errorf("parameter %s: the harness does not know it", k)
		}
	}
	key := func(n *glNote) string { return n.CreatedAt }
	switch q.Get("order_by") {
	case "", "created_at":
	case "updated_at":
		key = func(n *glNote) string { return n.UpdatedAt }
	default:
		return nil, fmt.Errorf("order_by does not have a valid value")
	}
	out := slices.Clone(notes)
	slices.SortStableFunc(out, func(a, b *glNote) int { return strings.Compare(key(a), key(b)) })
	switch q.Get("sort") {
	case "asc":
	case "", "desc":
		slices.Reverse(out)
	default:
		return nil, fmt.Errorf("sort does not have a valid value")
	}
	perPage, page := 20, 1
	for name, v := range map[string]*int{"per_page": &perPage, "page": &page} {
		if s := q.Get(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%s is invalid", name)
			}
			*v = n
		}
	}
	perPage = min(perPage, 100)
	from := min((page-1)*perPage, len(out))
	return out[from:min(from+perPage, len(out))], nil
}

// glArtifacts uploads a job's artifacts: as GitLab's runner does, after
// after_script, when the job's status matches when: (on_success by
// default); each path, relative to the project folder, to
// $WORK/forge/artifacts/job-N/PATH. A path that matches nothing is a
// warning, as it is to the runner.
func (f *forge) glArtifacts(name string, n int, a *glArtifacts, work string, ok bool) {
	when := a.When
	if when == "" {
		when = "on_success"
	}
	switch when {
	case "on_success", "on_failure", "always":
	default:
		f.ts.Fatalf("forge: job %s: artifacts:when %q: want on_success, on_failure or always", name, when)
	}
	if len(a.Paths) == 0 {
		f.ts.Fatalf("forge: job %s: artifacts without paths: the harness does not know them", name)
	}
	if when == "on_success" && !ok || when == "on_failure" && ok {
		fmt.Fprintf(f.out, "artifacts of %s: not uploaded (when: %s)\n", name, when)
		return
	}
	uploaded := 0
	for _, p := range a.Paths {
		clean := filepath.Clean(p)
		switch {
		case strings.ContainsAny(p, "*?[]{}$"):
			f.ts.Fatalf("forge: job %s: artifacts path %q: the harness knows plain paths, no patterns or variables", name, p)
		case filepath.IsAbs(p) || !filepath.IsLocal(clean):
			f.ts.Fatalf("forge: job %s: artifacts path %q is outside the project folder", name, p)
		}
		src := filepath.Join(work, clean)
		fi, err := os.Stat(src)
		if err != nil {
			fmt.Fprintf(f.out, "WARNING: %s: no matching files. Ensure that the artifact path is relative to the working directory\n", p)
			continue
		}
		if a.ExposeAs != "" && fi.IsDir() && !strings.HasSuffix(p, "/") {
			f.ts.Fatalf("forge: job %s: artifacts:expose_as: the folder %q must end in /", name, p)
		}
		files := f.copyTree(src, filepath.Join(f.dir, "artifacts", fmt.Sprintf("job-%d", n), clean))
		if len(files) == 0 {
			fmt.Fprintf(f.out, "WARNING: %s: no matching files. Ensure that the artifact path is relative to the working directory\n", p)
			continue
		}
		fmt.Fprintf(f.out, "artifacts of %s: %s: %s\n", name, p, strings.Join(files, " "))
		uploaded += len(files)
	}
	if a.ExposeAs != "" && uploaded > 0 {
		fmt.Fprintf(f.out, "artifacts of %s: exposed on the merge request as %q\n", name, a.ExposeAs)
	}
}

// glExpr is GitLab's rules: if: language, as far as the pipeline uses it:
// $VARIABLE, quoted strings, null, == != && || and parentheses. A
// variable that is not set is null.
type glExpr struct {
	scanner
	vars map[string]string
}

func (e *glExpr) parse() (bool, error) {
	v, err := e.or()
	if err == nil {
		err = e.end()
	}
	if err != nil {
		return false, err
	}
	return v, nil
}

func (e *glExpr) or() (bool, error) {
	l, err := e.and()
	for err == nil && e.eat("||") {
		var r bool
		r, err = e.and()
		l = l || r
	}
	return l, err
}

func (e *glExpr) and() (bool, error) {
	l, err := e.term()
	for err == nil && e.eat("&&") {
		var r bool
		r, err = e.term()
		l = l && r
	}
	return l, err
}

func (e *glExpr) term() (bool, error) {
	if e.eat("(") {
		v, err := e.or()
		if err == nil && !e.eat(")") {
			err = fmt.Errorf("missing )")
		}
		return v, err
	}
	l, err := e.operand()
	if err != nil {
		return false, err
	}
	switch {
	case e.eat("=="):
		r, err := e.operand()
		return eqPtr(l, r), err
	case e.eat("!="):
		r, err := e.operand()
		return !eqPtr(l, r), err
	case e.eat("=~"), e.eat("!~"):
		return false, fmt.Errorf("regular expressions: the harness does not know them")
	}
	return l != nil && *l != "", nil // $VAR alone: set and not empty
}

func eqPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func (e *glExpr) operand() (*string, error) {
	e.space()
	if e.pos >= len(e.src) {
		return nil, fmt.Errorf("missing operand")
	}
	switch c := e.src[e.pos]; {
	case c == '$':
		e.pos++
		brace := e.pos < len(e.src) && e.src[e.pos] == '{'
		if brace {
			e.pos++
		}
		start := e.pos
		for e.pos < len(e.src) && (isIdent(e.src[e.pos]) && e.src[e.pos] != '-') {
			e.pos++
		}
		name := e.src[start:e.pos]
		if brace && !e.eat("}") {
			return nil, fmt.Errorf("missing }")
		}
		v, ok := e.vars[name]
		if !ok {
			if !slices.Contains(glPredefined, name) {
				return nil, fmt.Errorf("variable $%s: the harness does not know it", name)
			}
			return nil, nil
		}
		return &v, nil
	case c == '"' || c == '\'':
		end := strings.IndexByte(e.src[e.pos+1:], c)
		if end < 0 {
			return nil, fmt.Errorf("unclosed string")
		}
		s := e.src[e.pos+1 : e.pos+1+end]
		e.pos += end + 2
		return &s, nil
	case strings.HasPrefix(e.src[e.pos:], "null"):
		e.pos += 4
		return nil, nil
	}
	return nil, fmt.Errorf("unknown syntax at %q", e.src[e.pos:])
}
