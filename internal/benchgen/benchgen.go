// Package benchgen writes generated zen repositories for benchmarks: many
// pipelines of trivial steps chained one after the other.
package benchgen

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Generate writes a repository with pipelines × steps trivial steps into
// dir, each step reading its predecessor's output, and commits it.
func Generate(dir string, pipelines, steps int) error {
	var b strings.Builder
	b.WriteString("package zen\n\n")
	for p := 0; p < pipelines; p++ {
		fmt.Fprintf(&b, "pipelines: p%04d: {\n\tparameters: {seed: %d, rate: 0.5}\n\tsteps: {\n", p, p)
		for s := 0; s < steps; s++ {
			fmt.Fprintf(&b, "\t\ts%02d: {\n\t\t\trun: [\"sh\", \"steps/step.sh\"]\n", s)
			if s == 0 {
				b.WriteString("\t\t\tinputs: data: file: \"data/input.txt\"\n")
			} else {
				fmt.Fprintf(&b, "\t\t\tinputs: data: steps.s%02d.outputs.out\n", s-1)
			}
			fmt.Fprintf(&b, "\t\t\tparameters: {seed: pipelines.p%04d.parameters.seed, index: %d}\n", p, s)
			b.WriteString("\t\t\toutputs: out: type: \"file\"\n\t\t}\n")
		}
		b.WriteString("\t}\n}\n")
	}
	files := map[string]string{
		"zen.cue":        b.String(),
		"data/input.txt": "input\n",
		"steps/step.sh":  "cat \"$ZEN_INPUTS/data\" > \"$ZEN_OUTPUTS/out\"\necho \"$ZEN_STEP\" >> \"$ZEN_OUTPUTS/out\"\n",
		".gitignore":     ".zen/\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	for _, args := range [][]string{
		{"init", "-q"},
		{"add", "-A"},
		{"-c", "user.name=bench", "-c", "user.email=bench@zen.invalid", "commit", "-q", "-m", "generated"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}
