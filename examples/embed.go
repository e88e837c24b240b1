// Package examples holds real pipelines a user can copy and run. The
// quickstart is embedded in zen: `zen init` writes it into a repository.
package examples

import "embed"

// Quickstart is the quickstart project: zen.cue, its steps and its data.
//
//go:embed all:quickstart
var Quickstart embed.FS

// CI holds the CI templates `zen init --ci` writes: github/zen.yml goes to
// .github/workflows/zen.yml, gitlab/.gitlab-ci.yml to .gitlab-ci.yml.
//
//go:embed all:ci
var CI embed.FS
