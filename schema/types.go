// Package schema holds zen's CUE schema, embedded in the binary, and the Go
// types a repository's CUE package decodes into. It owns everything between
// the files a user writes and a checked *Config:
//
//   - load.go: loading the package and unifying it with the schema;
//   - convert.go: decoding into Config, Pipeline, Step, Model and Stack,
//     with the name rule (names.go) checked once per name;
//   - paths.go: code globs and repository paths that must stay inside the
//     repository and match files;
//   - order.go: step references and the pipeline's order, cycles named;
//   - errors.go: positions and the Error a user sees (file, line, field);
//   - override.go: --set overrides; cache.go: the loaded-config cache.
package schema

import (
	"encoding/json"

	_ "embed"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/zen-dev/zen/schema/gate"
)

// Source is the CUE schema every zen repository is unified with.
//
//go:embed schema.cue
var Source []byte

// Config is a repository's desired state: its pipelines, stacks and models.
type Config struct {
	// Root is the absolute path of the directory the package was loaded from.
	Root         string
	DefaultStack string
	Pipelines    map[string]*Pipeline
	Stacks       map[string]*Stack
	Models       map[string]*Model
	// Deployments serve the versions in models' stages.
	Deployments map[string]*Deployment
	// Sets are the parameters --set overrides set, in their order.
	Sets []Set
}

// PipelineNames returns the pipeline names, sorted.
func (c *Config) PipelineNames() []string { return slices.Sorted(maps.Keys(c.Pipelines)) }

// StackNames returns the stack names, sorted.
func (c *Config) StackNames() []string { return slices.Sorted(maps.Keys(c.Stacks)) }

// Pipeline is a DAG of steps with its parameters.
type Pipeline struct {
	Name        string
	Description string
	Parameters  map[string]any
	Steps       map[string]*Step
	// Order lists the step names in a topological order: every step comes
	// after the steps whose outputs it reads; ties are broken by name.
	Order []string
}

// Step is one process of a pipeline.
type Step struct {
	Pipeline    string
	Name        string
	Description string
	Run         []string
	// Image is the OCI image the step runs in, as declared ("" for the
	// host); plan pins it to a digest.
	Image string
	// Network lets a step that runs in an image reach the network. It is
	// not part of the cache key: it says what the step may reach, not
	// what it computes.
	Network    bool
	Code       []string
	Inputs     map[string]*Input
	Outputs    map[string]*Output
	Parameters map[string]any
	Env        map[string]EnvValue
	Cache      bool
	Retries    Retries
	Timeout    time.Duration
	Resources  *Resources
}

// Upstream returns the names of the steps whose outputs s reads, sorted and
// without repeats.
func (s *Step) Upstream() []string {
	seen := map[string]bool{}
	var out []string
	for _, in := range s.Inputs {
		if in.Kind == InputStep && !seen[in.Step] {
			seen[in.Step] = true
			out = append(out, in.Step)
		}
	}
	sort.Strings(out)
	return out
}

// InputNames returns the input names, sorted.
func (s *Step) InputNames() []string { return slices.Sorted(maps.Keys(s.Inputs)) }

// OutputNames returns the output names, sorted.
func (s *Step) OutputNames() []string { return slices.Sorted(maps.Keys(s.Outputs)) }

// InputKind says where an input comes from.
type InputKind string

// The kinds of input.
const (
	InputStep  InputKind = "step"  // another step's output
	InputFile  InputKind = "file"  // a file of the repository
	InputDir   InputKind = "dir"   // a folder of the repository
	InputModel InputKind = "model" // the model version in a stage
	InputData  InputKind = "data"  // data zen data push stored, by digest
)

// Input is one named input of a step.
type Input struct {
	Name string
	Kind InputKind
	// Kind step: the producing step and output, and the output's type.
	Step, Output, Type string
	// Kind file or dir: a slash-separated path relative to the repository root.
	Path string
	// Kind model.
	Model, Stage string
	// Kind data: the name it was pushed under and its manifest digest
	// ("sha256:<hex>"), which is the input's digest in the cache key.
	Data, Digest string
	// Kind file or dir: GitIgnored says git ignores the path (the
	// repository's .gitignore files and excludes, when the CUE was
	// loaded); Ignored that the input says it means that (ignored: true).
	GitIgnored, Ignored bool
}

// Source describes where the input comes from, for messages:
// "load.train", "data/iris.csv", "fraud-detector@production".
func (in *Input) Source() string {
	switch in.Kind {
	case InputStep:
		return in.Step + "." + in.Output
	case InputModel:
		return in.Model + "@" + in.Stage
	case InputData:
		return in.Data + "@" + in.Digest
	default:
		return in.Path
	}
}

// Output is one declared output of a step.
type Output struct {
	Name  string
	Type  string
	Model string
	// Plot says how to draw an output of type plot; nil for other types.
	// It is not part of the cache key: it changes the drawing, not what
	// the step writes.
	Plot *PlotSpec
}

// PlotSpec is how zen plots draws an output of type plot: a CSV file
// (a header of column names) or a JSON list of objects, one point per
// row.
type PlotSpec struct {
	// X is the column of the x values; "" is the row number, from 1.
	X string
	// Y are the columns drawn against X, a line each; none is every
	// column but X.
	Y []string
	// Title is the chart's title; "" is STEP.OUTPUT.
	Title string
}

// EnvValue is a literal value or a reference to a secret.
type EnvValue struct {
	Value  string
	Secret string
}

// Retries says how often a failed step is tried again.
type Retries struct {
	Attempts        int
	ExceptExitCodes []int
	Backoff         time.Duration
}

// Resources are what a step asks of the machine that runs it.
type Resources struct {
	CPUs      int      `json:"cpus,omitempty"`
	Memory    string   `json:"memory,omitempty"`
	GPUs      int      `json:"gpus,omitempty"`
	Time      string   `json:"time,omitempty"`
	Partition string   `json:"partition,omitempty"`
	Sbatch    []string `json:"sbatch,omitempty"`
}

// Stack says where pipelines run and where artifacts are stored.
type Stack struct {
	Name          string         `json:"name"`
	Description   string         `json:"description,omitempty"`
	Orchestrator  Component      `json:"orchestrator"`
	ArtifactStore Component      `json:"artifact_store"`
	Signer        map[string]any `json:"signer,omitempty"`
	// ImageKey is the public key (a path in the repository) that every
	// step's image must be signed by: images: verify: key. "" checks no
	// image signature.
	ImageKey string `json:"image_key,omitempty"`
	// ImagesPinned is images: pinned: every step's image must be written
	// with its digest, never as a tag alone.
	ImagesPinned bool `json:"images_pinned,omitempty"`
	// ModelDeployer serves the deployments: flavor local (the default),
	// gitops or none.
	ModelDeployer Component `json:"model_deployer"`
}

// Component is a stack component: a flavor and its settings.
type Component struct {
	Flavor   string         `json:"flavor"`
	Settings map[string]any `json:"settings,omitempty"`
}

// String returns the component's setting key as a string, or "".
func (c Component) String(key string) string {
	s, _ := c.Settings[key].(string)
	return s
}

// Model is a declared model: its versions, stages and gates, and the step
// output that produces its versions.
type Model struct {
	Name string
	// Info is the model's metadata, which its versions' override.
	Info ModelInfo
	// Versions maps a version to its declaration, as canonical JSON.
	Versions map[string]json.RawMessage
	Stages   map[string]string
	Gates    map[string]*gate.Expr
	// Output produces the versions: "pipeline.step.output", "" when no
	// output is bound to the model.
	Pipeline, Step, Output string
	// Serve is how deployments serve a version; nil when the model
	// declares none.
	Serve *Serve
}

// ModelInfo is what a model version's ModelPack config says of it
// (#ModelInfo in schema.cue).
type ModelInfo struct {
	Description string   `json:"description,omitempty"`
	Licenses    []string `json:"licenses,omitempty"`
	Authors     []string `json:"authors,omitempty"`
	Card        string   `json:"card,omitempty"`
}

// VersionInfo returns the metadata of the declared version v: the
// version's own values, else the model's, field by field.
func (m *Model) VersionInfo(v string) ModelInfo {
	info := m.Info
	var own ModelInfo
	// The declaration was validated against the schema when loaded.
	_ = json.Unmarshal(m.Versions[v], &own)
	if own.Description != "" {
		info.Description = own.Description
	}
	if own.Licenses != nil {
		info.Licenses = own.Licenses
	}
	if own.Authors != nil {
		info.Authors = own.Authors
	}
	if own.Card != "" {
		info.Card = own.Card
	}
	return info
}

// VersionNames returns the declared versions, sorted.
func (m *Model) VersionNames() []string { return slices.Sorted(maps.Keys(m.Versions)) }

// StageNames returns the declared stages, sorted.
func (m *Model) StageNames() []string { return slices.Sorted(maps.Keys(m.Stages)) }

// OutputTypes are the types an output can have.
var OutputTypes = []string{"dir", "file", "json", "model", "plot", "table"}

// Known component flavors.
var (
	OrchestratorFlavors  = []string{"local", "slurm"}
	ArtifactStoreFlavors = []string{"oci-layout", "oci"}
	ModelDeployerFlavors = []string{"gitops", "local", "none"}
)

// Pos is a position in a CUE file, relative to the repository root.
type Pos struct {
	File      string
	Line, Col int
}

func (p Pos) String() string {
	if p.File == "" {
		return ""
	}
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// SecretEnv is the environment variable a secret is read from:
// ZEN_SECRET_ and the secret's name in upper case, other characters as _
// (api_token → ZEN_SECRET_API_TOKEN, hf.token → ZEN_SECRET_HF_TOKEN).
func SecretEnv(name string) string {
	return "ZEN_SECRET_" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, name)
}
