package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/zen-dev/zen/internal/benchgen"
	"github.com/zen-dev/zen/internal/testslurm"
	"github.com/zen-dev/zen/state"
)

// zenCmd runs one zen command in-process in dir and fails the benchmark on an
// error.
func zenCmd(b *testing.B, dir string, args ...string) string {
	b.Helper()
	var out bytes.Buffer
	root := newRoot(&out, io.Discard)
	root.SetArgs(append([]string{"-C", dir}, args...))
	if err := root.Execute(); err != nil {
		b.Fatalf("zen %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// gitRun runs git in dir as a committer named b, with no background gc
// (which would outlive the benchmark's temporary folder).
func gitRun(b *testing.B, dir string, args ...string) {
	b.Helper()
	cmd := exec.Command("git", append([]string{"-c", "gc.auto=0", "-c", "user.name=b", "-c", "user.email=b@zen.invalid"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// generated makes a repository of pipelines × steps trivial steps and
// applies it once, so that everything is recorded and cached.
func generated(b *testing.B, pipelines, steps int) string {
	b.Helper()
	wd, _ := os.Getwd()
	b.Cleanup(func() { os.Chdir(wd) })
	dir := b.TempDir()
	if err := benchgen.Generate(dir, pipelines, steps); err != nil {
		b.Fatal(err)
	}
	zenCmd(b, dir, "apply")
	if out := zenCmd(b, dir, "plan"); !strings.Contains(out, "No changes") {
		b.Fatalf("after apply, plan still has changes:\n%s", out)
	}
	return dir
}

// BenchmarkPlanQuickstart: zen plan on the quickstart with nothing changed.
func BenchmarkPlanQuickstart(b *testing.B) {
	if _, err := exec.LookPath("python3"); err != nil {
		b.Skip("the quickstart needs python3")
	}
	wd, _ := os.Getwd()
	b.Cleanup(func() { os.Chdir(wd) })
	dir := b.TempDir()
	if err := exec.Command("git", "init", "-q", dir).Run(); err != nil {
		b.Fatal(err)
	}
	zenCmd(b, dir, "init")
	gitRun(b, dir, "add", "-A")
	gitRun(b, dir, "commit", "-qm", "init")
	zenCmd(b, dir, "apply")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		zenCmd(b, dir, "plan")
	}
}

// BenchmarkApplyCached1000: zen apply of 1,000 steps (100 pipelines × 10)
// that are all cached.
func BenchmarkApplyCached1000(b *testing.B) {
	dir := generated(b, 100, 10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out := zenCmd(b, dir, "apply"); !strings.Contains(out, "No changes. 1000 steps cached") {
			b.Fatalf("apply: %s", out)
		}
	}
}

// BenchmarkPlanLarge: zen plan on 1,000 pipelines × 10 steps, nothing
// changed. Set ZEN_BENCH_LARGE=1 to run it: its setup applies 10,000 steps.
func BenchmarkPlanLarge(b *testing.B) {
	if os.Getenv("ZEN_BENCH_LARGE") == "" {
		b.Skip("set ZEN_BENCH_LARGE=1 (make bench does) to plan 1,000 pipelines × 10 steps")
	}
	dir := generated(b, 1000, 10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		zenCmd(b, dir, "plan")
	}
}

// BenchmarkApplyTrivialSteps: the local orchestrator's cost per step, for
// 100 trivial steps that all run (--no-cache); reported per step.
func BenchmarkApplyTrivialSteps(b *testing.B) {
	dir := generated(b, 10, 10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		zenCmd(b, dir, "apply", "--no-cache")
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*100)/1000, "ms/step")
}

// BenchmarkLineage10000Runs: zen lineage on a state ref holding 10,000
// runs and the model version's record; the cost must not grow with the
// number of runs.
func BenchmarkLineage10000Runs(b *testing.B) {
	wd, _ := os.Getwd()
	b.Cleanup(func() { os.Chdir(wd) })
	dir := b.TempDir()
	gitRun(b, dir, "init", "-q")
	gitRun(b, dir, "commit", "-q", "--allow-empty", "-m", "x")
	os.WriteFile(filepath.Join(dir, "zen.cue"), []byte("package zen\n"), 0o644)
	st, err := state.Open(dir, state.DefaultRef)
	if err != nil {
		b.Fatal(err)
	}
	files := map[string][]byte{}
	fp := &state.Fingerprint{Command: []string{"sh", "train.sh"}, Inputs: map[string]string{"data": "sha256:" + strings.Repeat("a", 64)}}
	var target string
	for i := range 10000 {
		id := fmt.Sprintf("20261123-%06d.000-%06x", i, i)
		run := &state.Run{Version: state.RecordVersion, ID: id, Pipeline: "p", Status: state.StatusSucceeded, Steps: map[string]*state.StepResult{
			"train": {Status: state.StatusSucceeded, Fingerprint: fp, Sources: map[string]string{"data": "data.csv"},
				Outputs: map[string]state.Artifact{"model": {Digest: "sha256:" + strings.Repeat("b", 64)}}},
		}}
		data, _ := state.Encode(run)
		files[state.RunPath(id)] = data
		target = id
	}
	mv := &state.ModelVersion{Version: state.RecordVersion, Model: "m", ModelVersion: "1.0.0", Digest: "sha256:" + strings.Repeat("c", 64),
		Pipeline: "p", Step: "train", Output: "model", RunID: target, Declared: json.RawMessage("{}")}
	data, _ := state.Encode(mv)
	files[state.ModelVersionPath("m", "1.0.0")] = data
	if _, err := st.Commit(context.Background(), "", state.Change{Files: files, Message: "bench"}); err != nil {
		b.Fatal(err)
	}
	if out := zenCmd(b, dir, "lineage", "m:1.0.0"); !strings.Contains(out, "step train") {
		b.Fatalf("lineage: %s", out)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		zenCmd(b, dir, "lineage", "m:1.0.0")
	}
}

// metricsRun is a realistic run record for the metrics benchmarks: four
// steps with outputs, logs, fingerprints and a few metrics each, and the
// parameters of an experiment.
func metricsRun(id, pipeline string, i int, at time.Time) *state.Run {
	digest := func(s string) string { return "sha256:" + fmt.Sprintf("%064x", len(s)*7919+i) }
	steps := map[string]*state.StepResult{}
	order := []string{"prep", "features", "train", "evaluate"}
	metrics := map[string]map[string]float64{
		"prep":     {"rows": 150000, "dropped": float64(i % 17)},
		"features": {"columns": 48, "null_ratio": 0.002 * float64(i%5)},
		"train":    {"loss.train": 0.2 + float64(i%100)/1000, "loss.val": 0.25 + float64(i%90)/1000, "epochs": 20, "seconds": 300 + float64(i%60)},
		"evaluate": {"accuracy": 0.9 - float64(i%50)/1000, "f1": 0.88, "auc": 0.95 - float64(i%30)/1000},
	}
	for k, name := range order {
		start, end := at.Add(time.Duration(k)*time.Minute), at.Add(time.Duration(k+1)*time.Minute)
		exit := 0
		steps[name] = &state.StepResult{
			Status: state.StatusSucceeded, CacheKey: fmt.Sprintf("%064x", i*4+k), Attempts: 1, ExitCode: &exit,
			Started: &start, Finished: &end,
			Outputs: map[string]state.Artifact{"out": {Digest: digest(name + "out"), Size: 1 << 20, Type: "dir"}},
			Metrics: metrics[name],
			Log:     &state.Artifact{Digest: digest(name + "log"), Size: 4096, Type: "log"},
			Fingerprint: &state.Fingerprint{Command: []string{"python", name + ".py"}, Image: "python:3.12",
				Parameters: map[string]json.RawMessage{"lr": json.RawMessage("0.01")},
				Code:       map[string]string{name + ".py": digest(name + "code")},
				Inputs:     map[string]string{"data": digest(name + "in")}, Outputs: map[string]string{"out": "dir"}},
			Sources: map[string]string{"data": "data/train.csv"},
		}
	}
	return &state.Run{Version: state.RecordVersion, ID: id, Pipeline: pipeline, Status: state.StatusSucceeded,
		SourceCommit: fmt.Sprintf("%040x", i), Stack: "local", Orchestrator: "local", Store: "oci-layout:.zen/store",
		Experiment: i%3 == 0, Overrides: map[string]any{pipeline + ".lr": 0.01 * float64(1+i%4)},
		Parameters: map[string]any{"lr": 0.01 * float64(1+i%4), "epochs": 20, "batch_size": 256, "optimizer": "adam",
			"model": map[string]any{"depth": 6, "width": 128, "dropout": 0.1}},
		Started: at, Finished: at.Add(4 * time.Minute), Order: order, Steps: steps}
}

// metricsState records n runs on a new repository in dir, on its state
// ref in one commit: run i of pipeline pipelineOf(i), one every 50
// minutes from 2026-01-01, so that the runs fill a year's monthly shards.
// With indexed, each run has its entry in the index of the runs'
// pipelines, as zen records runs; without, the records are alone, as zen
// recorded them before the index. It returns the run ids, oldest first.
func metricsState(b *testing.B, dir string, n int, pipelineOf func(i int) string, indexed bool) []string {
	b.Helper()
	gitRun(b, dir, "init", "-q")
	gitRun(b, dir, "commit", "-q", "--allow-empty", "-m", "x")
	if err := os.WriteFile(filepath.Join(dir, "zen.cue"), []byte("package zen\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	st, err := state.Open(dir, state.DefaultRef)
	if err != nil {
		b.Fatal(err)
	}
	files := map[string][]byte{}
	ids := make([]string, n)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		at := start.Add(time.Duration(i) * 50 * time.Minute)
		ids[i] = at.Format("20060102-150405.000") + fmt.Sprintf("-%06x", i)
		run := metricsRun(ids[i], pipelineOf(i), i, at)
		if indexed {
			if err := state.AddRun(files, run); err != nil {
				b.Fatal(err)
			}
			continue
		}
		data, err := state.Encode(run)
		if err != nil {
			b.Fatal(err)
		}
		files[state.RunPath(ids[i])] = data
	}
	if _, err := st.Commit(context.Background(), "", state.Change{Files: files, Message: "bench"}); err != nil {
		b.Fatal(err)
	}
	return ids
}

// BenchmarkMetricsDiff10000Runs: zen metrics diff on a state ref holding
// 10,000 runs of a year (target: under 200 ms), each with its entry in the
// index of the runs' pipelines, as zen records them.
//
//   - default-pair: the latest run against its pipeline's previous one,
//     10 pipelines taking turns;
//   - previous-far: the latest run's pipeline ran once before, as the
//     oldest run, so the 9,998 runs between are passed over;
//   - previous-far-cold: the same without .git/zen-run-pipelines, which
//     remembers the pipelines of the unindexed records read through, as
//     in a fresh clone;
//   - legacy-previous-far, legacy-previous-far-cold: the same on a state
//     recorded before the index: a clone's first diff reads every record
//     between, the next ones the cache;
//   - named: two runs named by id, far apart;
//   - process-zen: previous-far by the zen binary, as users run it;
//   - process-git-show: git show of the same two records, the least a
//     separate process reading them from the state ref costs.
func BenchmarkMetricsDiff10000Runs(b *testing.B) {
	const n = 10000
	wd, _ := os.Getwd()
	b.Cleanup(func() { os.Chdir(wd) })
	// Two states, made once (each takes a while) for the cases that use
	// them.
	turns := func(i int) string { return fmt.Sprintf("p%02d", i%10) }
	far := func(i int) string {
		if i == 0 || i == n-1 {
			return "rare"
		}
		return turns(i)
	}
	type repo struct {
		dir string
		ids []string
	}
	repos := map[string]*repo{}
	get := func(sb *testing.B, name string, pipelineOf func(int) string, indexed bool) *repo {
		if repos[name] == nil {
			dir := b.TempDir()
			repos[name] = &repo{dir, metricsState(sb, dir, n, pipelineOf, indexed)}
		}
		return repos[name]
	}
	var bin string
	zenBinary := func(sb *testing.B) string {
		if bin == "" {
			bin = filepath.Join(b.TempDir(), "zen")
			if out, err := exec.Command("go", "build", "-o", bin, "github.com/zen-dev/zen/cmd/zen").CombinedOutput(); err != nil {
				sb.Fatalf("go build: %v: %s", err, out)
			}
		}
		return bin
	}
	cache := func(r *repo) string { return filepath.Join(r.dir, ".git", "zen-run-pipelines") }

	cases := []struct {
		name string
		// repo returns the state, the arguments of zen metrics diff and
		// the run it must compare against.
		repo func(sb *testing.B) (r *repo, args []string, old string)
		cold bool
	}{
		{"default-pair", func(sb *testing.B) (*repo, []string, string) {
			r := get(sb, "turns", turns, true)
			return r, nil, r.ids[n-11]
		}, false},
		{"previous-far", func(sb *testing.B) (*repo, []string, string) {
			r := get(sb, "far", far, true)
			return r, nil, r.ids[0]
		}, false},
		{"previous-far-cold", func(sb *testing.B) (*repo, []string, string) {
			r := get(sb, "far", far, true)
			return r, nil, r.ids[0]
		}, true},
		{"legacy-previous-far", func(sb *testing.B) (*repo, []string, string) {
			r := get(sb, "far-legacy", far, false)
			return r, nil, r.ids[0]
		}, false},
		{"legacy-previous-far-cold", func(sb *testing.B) (*repo, []string, string) {
			r := get(sb, "far-legacy", far, false)
			return r, nil, r.ids[0]
		}, true},
		{"named", func(sb *testing.B) (*repo, []string, string) {
			r := get(sb, "turns", turns, true)
			return r, []string{r.ids[3], r.ids[n-2]}, r.ids[3]
		}, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r, args, old := c.repo(b)
			args = append([]string{"metrics", "diff"}, args...)
			// The diff must be of the expected pair, with every step's
			// metrics.
			out := zenCmd(b, r.dir, args...)
			if !strings.Contains(out, "against run "+old) || !strings.Contains(out, "evaluate") || !strings.Contains(out, "loss.val") {
				b.Fatalf("zen %s, want run %s as A:\n%s", strings.Join(args, " "), old, out)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if c.cold {
					b.StopTimer()
					if err := os.Remove(cache(r)); err != nil && !errors.Is(err, fs.ErrNotExist) {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				zenCmd(b, r.dir, args...)
			}
		})
	}

	b.Run("process-zen", func(b *testing.B) {
		r := get(b, "far", far, true)
		zen := zenBinary(b)
		zenCmd(b, r.dir, "metrics", "diff")
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			cmd := exec.Command(zen, "-C", r.dir, "metrics", "diff")
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "against run "+r.ids[0]) {
				b.Fatalf("zen metrics diff: %v: %s", err, out)
			}
		}
	})
	b.Run("process-git-show", func(b *testing.B) {
		r := get(b, "far", far, true)
		a, z := state.DefaultRef+":"+state.RunPath(r.ids[0]), state.DefaultRef+":"+state.RunPath(r.ids[n-1])
		for i := 0; i < b.N; i++ {
			cmd := exec.Command("git", "-C", r.dir, "show", a, z)
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), `"loss.val"`) {
				b.Fatalf("git show: %v: %s", err, out)
			}
		}
	})
}

// BenchmarkPlanHistory: zen plan, nothing changed, on a repository of 10
// pipelines × 10 steps whose state ref also holds N past runs and 1,000
// recorded (and declared) model versions. The cost must not grow with N.
func BenchmarkPlanHistory(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("runs=%d", n), func(b *testing.B) {
			dir := generated(b, 10, 10)
			st, err := state.Open(dir, state.DefaultRef)
			if err != nil {
				b.Fatal(err)
			}
			files := map[string][]byte{}
			for i := range n {
				id := fmt.Sprintf("20250101-%06d.000-%06x", i, i)
				run := &state.Run{Version: state.RecordVersion, ID: id, Pipeline: "p0000", Status: state.StatusSucceeded,
					Steps: map[string]*state.StepResult{"s00": {Status: state.StatusSucceeded}}}
				data, _ := state.Encode(run)
				files[state.RunPath(id)] = data
			}
			var versions strings.Builder
			for i := range 1000 {
				v := fmt.Sprintf("1.%d.0", i)
				fmt.Fprintf(&versions, "%q: {}\n", v)
				mv := &state.ModelVersion{Version: state.RecordVersion, Model: "m", ModelVersion: v, Digest: "sha256:" + strings.Repeat("c", 64),
					Pipeline: "p0000", Step: "s09", Output: "out", RunID: "r", Declared: json.RawMessage("{}")}
				data, _ := state.Encode(mv)
				files[state.ModelVersionPath("m", v)] = data
			}
			head, err := st.Head()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.Commit(context.Background(), head.Commit(), state.Change{Files: files, Message: "history"}); err != nil {
				b.Fatal(err)
			}
			cue := "package zen\n\nmodels: m: versions: {\n" + versions.String() + "}\n"
			if err := os.WriteFile(filepath.Join(dir, "models.cue"), []byte(cue), 0o644); err != nil {
				b.Fatal(err)
			}
			gitRun(b, dir, "add", "-A")
			gitRun(b, dir, "commit", "-qm", "models")
			if out := zenCmd(b, dir, "plan"); !strings.Contains(out, "No changes") {
				b.Fatalf("plan has changes:\n%s", out)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				zenCmd(b, dir, "plan")
			}
		})
	}
}

// BenchmarkSlurm100Steps: zen apply of 100 steps (10 chains of 10) on a
// real two-node Slurm cluster, with an in-process registry as the store.
// It reports how long submitting all 100 jobs took (submit-s, target 2 s)
// and the step runner's time on the node beyond the step's own
// (runner-s/step, target 1 s). It needs Slurm (apt-get install slurm-wlm
// munge) and root.
func BenchmarkSlurm100Steps(b *testing.B) {
	if !testslurm.Available() || os.Geteuid() != 0 {
		b.Skip("needs Slurm (apt-get install slurm-wlm munge) and root")
	}
	c, err := testslurm.Start(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	b.Setenv("SLURM_CONF", c.Conf)
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	bin := filepath.Join(b.TempDir(), "zen")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/zen-dev/zen/cmd/zen").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v: %s", err, out)
	}
	wd, _ := os.Getwd()
	b.Cleanup(func() { os.Chdir(wd) })
	dir := b.TempDir()
	if err := benchgen.Generate(dir, 10, 10); err != nil {
		b.Fatal(err)
	}
	stack := fmt.Sprintf("\ndefault_stack: \"hpc\"\nstacks: hpc: {\n\torchestrator: {flavor: \"slurm\", partition: %q, zen: %q}\n\tartifact_store: {flavor: \"oci\", repository: %q}\n}\n",
		c.Partition, bin, strings.TrimPrefix(srv.URL, "http://")+"/bench")
	f, err := os.OpenFile(filepath.Join(dir, "zen.cue"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(stack)
		f.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
	gitRun(b, dir, "commit", "-qam", "slurm")
	var submit, runner float64
	for i := 0; i < b.N; i++ {
		var out, progress bytes.Buffer
		root := newRoot(&out, &progress)
		root.SetArgs([]string{"-C", dir, "apply", "--no-cache"})
		if err := root.Execute(); err != nil {
			b.Fatalf("zen apply: %v\n%s\n%s", err, out.String(), progress.String())
		}
		for _, line := range strings.Split(progress.String(), "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "submitted 100 jobs in "); ok {
				d, _ := time.ParseDuration(rest)
				submit += d.Seconds()
			}
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "step runner: "); ok {
				d, _ := time.ParseDuration(strings.Fields(rest)[0])
				runner += d.Seconds()
			}
		}
	}
	b.ReportMetric(submit/float64(b.N), "submit-s")
	b.ReportMetric(runner/float64(b.N), "runner-s/step")
}
