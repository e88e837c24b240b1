// Command zen runs ML pipelines declared in CUE, records them in git and
// stores their artifacts in OCI registries.
package main

import (
	"os"

	"github.com/zen-dev/zen/cmd/zen/cli"
)

func main() { os.Exit(cli.Main()) }
