package cli

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/zen-dev/zen/internal/benchgen"
)

// zen runs one zen command in-process in dir and fails the benchmark on an
// error.
func zen(b *testing.B, dir string, args ...string) string {
	b.Helper()
	var out bytes.Buffer
	root := newRoot(&out, io.Discard)
	root.SetArgs(append([]string{"-C", dir}, args...))
	if err := root.Execute(); err != nil {
		b.Fatalf("zen %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
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
	zen(b, dir, "apply")
	if out := zen(b, dir, "plan"); !strings.Contains(out, "No changes") {
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
	zen(b, dir, "init")
	for _, args := range [][]string{{"add", "-A"}, {"-c", "user.name=b", "-c", "user.email=b@zen.invalid", "commit", "-qm", "init"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git: %v: %s", err, out)
		}
	}
	zen(b, dir, "apply")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		zen(b, dir, "plan")
	}
}

// BenchmarkApplyCached1000: zen apply of 1,000 steps (100 pipelines × 10)
// that are all cached.
func BenchmarkApplyCached1000(b *testing.B) {
	dir := generated(b, 100, 10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out := zen(b, dir, "apply"); !strings.Contains(out, "No changes. 1000 steps cached") {
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
		zen(b, dir, "plan")
	}
}

// BenchmarkApplyTrivialSteps: the local orchestrator's cost per step, for
// 100 trivial steps that all run (--no-cache); reported per step.
func BenchmarkApplyTrivialSteps(b *testing.B) {
	dir := generated(b, 10, 10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		zen(b, dir, "apply", "--no-cache")
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*100)/1000, "ms/step")
}
