// Command pushmodel pushes a file or folder as a model version, for the
// side-by-side benchmarks in scripts/bench:
//
//	pushmodel -repository 127.0.0.1:5000/bench PATH    push to a registry
//	pushmodel -layout DIR PATH                         package into an OCI layout
//
// It prints the seconds taken and the process's peak resident memory.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/zen-dev/zen/registry"
)

func main() {
	repo := flag.String("repository", "", "push to this registry repository")
	layout := flag.String("layout", "", "package into this OCI layout folder")
	flag.Parse()
	if flag.NArg() != 1 || (*repo == "") == (*layout == "") {
		fmt.Fprintln(os.Stderr, "usage: pushmodel (-repository REPO | -layout DIR) PATH")
		os.Exit(2)
	}
	var s registry.Store
	var err error
	if *repo != "" {
		s, err = registry.OpenRemote(*repo)
	} else {
		s, err = registry.OpenLayout(*layout)
	}
	if err != nil {
		fail(err)
	}
	start := time.Now()
	d, err := s.(registry.ModelStore).PushModel(context.Background(), flag.Arg(0), registry.ModelMeta{Name: "bench", Version: "1.0.0"})
	if err != nil {
		fail(err)
	}
	if err := s.Close(); err != nil {
		fail(err)
	}
	fmt.Printf("%s %.3f s, peak RSS %s\n", d.Digest, time.Since(start).Seconds(), peakRSS())
}

// peakRSS reads the process's high-water mark of resident memory.
func peakRSS() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	return "?"
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
