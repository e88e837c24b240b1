// Command gen writes a generated zen repository for benchmarks:
//
//	go run ./internal/benchgen/gen -pipelines 1000 -steps 10 DIR
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/zen-dev/zen/internal/benchgen"
)

func main() {
	pipelines := flag.Int("pipelines", 1000, "how many pipelines")
	steps := flag.Int("steps", 10, "steps per pipeline")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: gen [-pipelines N] [-steps N] DIR")
		os.Exit(2)
	}
	if err := benchgen.Generate(flag.Arg(0), *pipelines, *steps); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
