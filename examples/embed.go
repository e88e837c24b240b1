// Package examples holds real pipelines a user can copy and run. The
// quickstart is embedded in zen: `zen init` writes it into a repository.
package examples

import "embed"

// Quickstart is the quickstart project: zen.cue, its steps and its data.
//
//go:embed all:quickstart
var Quickstart embed.FS

// CI holds the CI workflow templates `zen init --ci` renders for a stack
// (text/template, with [[ ]] as delimiters): github/zen.yml.tmpl goes to
// .github/workflows/zen.yml, gitlab/.gitlab-ci.yml.tmpl to .gitlab-ci.yml.
//
//go:embed all:ci
var CI embed.FS
