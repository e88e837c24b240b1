package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"
)

// Serve is how a model's versions are served (#Serve in schema.cue): a
// process that reads the version at $ZEN_MODEL and listens on $PORT.
type Serve struct {
	Run []string `json:"run"`
	// Image is the image to run it in, as declared; "" for the host.
	Image string `json:"image,omitempty"`
	// Health is the path that answers 2xx once the process is ready; ""
	// for a process that is ready once its port accepts connections.
	Health       string            `json:"health,omitempty"`
	StartTimeout time.Duration     `json:"start_timeout,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
}

// DefaultStartTimeout is how long a serving process has to become ready
// when its model does not say.
const DefaultStartTimeout = 30 * time.Second

// Deployment serves the version a model's stage holds.
type Deployment struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Model       string `json:"model"`
	Stage       string `json:"stage"`
	// Port is the port a local deployment listens on; 0 for a free one.
	Port int `json:"port,omitempty"`
}

// DeploymentNames returns the deployment names, sorted.
func (c *Config) DeploymentNames() []string { return slices.Sorted(maps.Keys(c.Deployments)) }

// ServeSpec is the digest of how a deployment is served, besides the
// version: the model's serving command, its image (pinned, as plan
// resolves it: "" keeps it as declared), health path, timeout and
// environment, the deployment's port, and the model deployer's settings
// (the local one has none). A process started with another spec is
// started again; manifests rendered with another are rendered again.
func ServeSpec(d *Deployment, s *Serve, pinnedImage string, deployer map[string]any) string {
	spec := *s
	if pinnedImage != "" {
		spec.Image = pinnedImage
	}
	b, _ := json.Marshal(struct {
		Serve    Serve          `json:"serve"`
		Port     int            `json:"port"`
		Deployer map[string]any `json:"deployer,omitempty"`
	}{spec, d.Port, deployer})
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// deployments decodes and checks the deployments: each names a declared
// model that declares serve, and one of its declared stages; no two local
// deployments share a port.
func (l *loader) deployments(cfg *Config, raw map[string]rawDeployment) {
	ports := map[int]string{}
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		rd := raw[name]
		at := func(field string) ([]string, string) {
			p := []string{"deployments", name, field}
			return p, strings.Join(p, ".")
		}
		d := &Deployment{Name: name, Description: rd.Description, Model: rd.Model, Stage: rd.Stage, Port: rd.Port}
		cfg.Deployments[name] = d
		m := cfg.Models[rd.Model]
		switch {
		case m == nil:
			p, ps := at("model")
			l.errorf(l.pos(p...), ps, "no model %q in models (models: %s)", rd.Model, joinOrNone(slices.Sorted(maps.Keys(cfg.Models))))
			continue
		case m.Serve == nil:
			p, ps := at("model")
			l.errorf(l.pos(p...), ps, "model %s declares no serving command: add models.%s.serve: {run: [...]} (it reads the version at $ZEN_MODEL and listens on $PORT)", rd.Model, rd.Model)
		}
		if _, ok := m.Stages[rd.Stage]; !ok {
			p, ps := at("stage")
			l.errorf(l.pos(p...), ps, "no stage %q in models.%s.stages (stages: %s)", rd.Stage, rd.Model, joinOrNone(m.StageNames()))
		}
		if d.Port != 0 {
			if other, ok := ports[d.Port]; ok {
				p, ps := at("port")
				l.errorf(l.pos(p...), ps, "port %d is deployment %s's already", d.Port, other)
			}
			ports[d.Port] = name
		}
	}
}

// serve decodes a model's serve, checking its start_timeout.
func (l *loader) serve(model string, rs *rawServe) *Serve {
	if rs == nil {
		return nil
	}
	s := &Serve{Run: rs.Run, Image: rs.Image, Health: rs.Health, Env: rs.Env, StartTimeout: DefaultStartTimeout}
	if rs.StartTimeout != "" {
		d, err := time.ParseDuration(rs.StartTimeout)
		if err != nil || d <= 0 {
			p := []string{"models", model, "serve", "start_timeout"}
			l.errorf(l.pos(p...), strings.Join(p, "."), "invalid start_timeout %q: want a positive Go duration such as \"30s\"", rs.StartTimeout)
		}
		s.StartTimeout = d
	}
	return s
}

type rawDeployment struct {
	Description string `json:"description"`
	Model       string `json:"model"`
	Stage       string `json:"stage"`
	Port        int    `json:"port"`
}

type rawServe struct {
	Run          []string          `json:"run"`
	Image        string            `json:"image"`
	Health       string            `json:"health"`
	StartTimeout string            `json:"start_timeout"`
	Env          map[string]string `json:"env"`
}

func joinOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Position returns where the field at path is written in the CUE package
// in dir, relative to dir, or the zero Pos when it cannot tell. It
// evaluates the package, so it is for errors found after Load, whose
// cached configuration has no positions.
func Position(dir string, path ...string) Pos {
	root, err := filepath.Abs(dir)
	if err != nil {
		return Pos{}
	}
	insts := load.Instances([]string{"."}, &load.Config{Dir: root})
	if len(insts) != 1 || insts[0].Err != nil {
		return Pos{}
	}
	l := &loader{root: root, ctx: cuecontext.New(), pkg: insts[0].ID()}
	l.user = l.ctx.BuildInstance(insts[0])
	return l.pos(path...)
}

// At is an *Error at the field path of the CUE package in dir, with its
// position: for a check that fails after Load.
func At(dir string, path []string, format string, args ...any) *Error {
	return &Error{Pos: Position(dir, path...), Path: strings.Join(path, "."), Msg: fmt.Sprintf(format, args...)}
}
