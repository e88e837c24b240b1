// Package examples holds real pipelines a user can copy and run. The
// quickstart is embedded in zen: `zen init` writes it into a repository.
package examples

import "embed"

// Quickstart is the quickstart project: zen.cue, its steps and its data.
//
//go:embed all:quickstart
var Quickstart embed.FS
