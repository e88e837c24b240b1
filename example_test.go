package zen_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/plan/render"
)

// A Go program plans and applies a repository's pipeline in process, as
// zen plan and zen apply do, and plans again: the step is cached.
func Example() {
	dir, err := os.MkdirTemp("", "zen-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// A git repository with one pipeline of one step, committed. The
	// public key zen makes on first use is ignored here; a real
	// repository commits it.
	files := map[string]string{
		"zen.cue": `package zen

pipelines: hello: steps: greet: {
	run: ["sh", "-c", "echo hello > $ZEN_OUTPUTS/greeting"]
	outputs: greeting: type: "file"
}
`,
		".gitignore": "/cosign.pub\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	commit(dir)

	ctx := context.Background()
	p, err := zen.Open(dir, zen.Options{Remote: "none"})
	if err != nil {
		log.Fatal(err)
	}
	pl, err := p.Plan(ctx, zen.PlanOptions{ForApply: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(render.Summary(pl.Plan))
	res, err := p.Apply(ctx, pl, zen.ApplyOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res.Runs {
		fmt.Printf("run of %s %s: step greet %s\n", r.Pipeline, r.Status, r.Steps["greet"].Status)
	}

	again, err := p.Plan(ctx, zen.PlanOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(render.Summary(again.Plan))
	// Output:
	// Plan: 1 pipeline to run, 1 step to run, 0 cached.
	// run of hello succeeded: step greet succeeded
	// No changes. 1 step cached; nothing to run.
}

// commit makes dir a git repository with its files committed.
func commit(dir string) {
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		log.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		log.Fatal(err)
	}
	if err := wt.AddGlob("."); err != nil {
		log.Fatal(err)
	}
	who := &object.Signature{Name: "Example", Email: "example@zen.invalid", When: time.Now()}
	if _, err := wt.Commit("a pipeline", &git.CommitOptions{Author: who}); err != nil {
		log.Fatal(err)
	}
}
