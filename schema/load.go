package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"
)

// Load loads the CUE package in dir, unifies it with the schema, checks it
// and decodes it. Problems come back as Errors, each with its position.
func Load(dir string, overrides ...Override) (*Config, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	l := &loader{root: root, ctx: cuecontext.New(), overrides: overrides}
	return l.load()
}

type loader struct {
	root string
	ctx  *cue.Context
	user cue.Value
	pkg  string // the package's id, which qualifies its hidden fields
	errs Errors

	resolvedRoot string // root with its symlinks resolved, once asked for

	overrides []Override
}

func (l *loader) load() (*Config, error) {
	matches, _ := filepath.Glob(filepath.Join(l.root, "*.cue"))
	if len(matches) == 0 {
		return nil, fmt.Errorf("no CUE files in %s: run `zen init` to create zen.cue", l.root)
	}
	if data := l.cached(); data != nil {
		if cfg, err := l.decode(data); err == nil {
			return cfg, nil
		}
		// A check outside CUE failed (a missing input file, say): evaluate
		// again, to report it with its position.
		l.errs = nil
	}
	insts := load.Instances([]string{"."}, &load.Config{Dir: l.root})
	if len(insts) != 1 {
		return nil, fmt.Errorf("%s: expected one CUE package, found %d", l.root, len(insts))
	}
	if err := insts[0].Err; err != nil {
		return nil, l.cueErrors(err)
	}
	if errs := l.checkUTF8(insts[0].BuildFiles); len(errs) > 0 {
		return nil, errs
	}
	if len(l.overrides) > 0 {
		if err := l.applyOverrides(insts[0]); err != nil {
			return nil, err
		}
	}
	l.pkg = insts[0].ID()
	l.user = l.ctx.BuildInstance(insts[0])
	if err := l.user.Err(); err != nil {
		return nil, l.cueErrors(err)
	}
	zen := l.ctx.CompileBytes(Source, cue.Filename("zen-schema.cue")).LookupPath(cue.MakePath(cue.Def("#Zen")))
	if err := zen.Err(); err != nil {
		return nil, fmt.Errorf("zen's embedded schema: %w", err)
	}
	v := zen.Unify(l.user)
	if err := v.Validate(cue.Concrete(true)); err != nil {
		return nil, l.cueErrors(err)
	}
	data, err := v.MarshalJSON()
	if err != nil {
		return nil, l.cueErrors(err)
	}
	cfg, err := l.decode(data)
	if err == nil {
		l.remember(insts[0], data)
	}
	return cfg, err
}

// decode turns the evaluated JSON into a Config and checks what CUE does
// not.
func (l *loader) decode(data []byte) (*Config, error) {
	var raw rawZen
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("decode %s: %w", l.root, err)
	}
	// Names first: every other check (a ref splits at '.', a model is
	// looked up by name) would report a bad name again, as something else.
	if l.checkNames(&raw); len(l.errs) > 0 {
		l.errs.sort()
		return nil, l.errs
	}
	cfg := l.convert(&raw)
	if len(l.errs) > 0 {
		l.errs.sort()
		return nil, l.errs
	}
	cfg.Sets = sets(cfg, l.overrides)
	return cfg, nil
}

type rawZen struct {
	DefaultStack string                     `json:"default_stack"`
	Pipelines    map[string]rawPipeline     `json:"pipelines"`
	Stacks       map[string]map[string]any  `json:"stacks"`
	Models       map[string]json.RawMessage `json:"models"`
	Deployments  map[string]rawDeployment   `json:"deployments"`
}

type rawPipeline struct {
	Description string             `json:"description"`
	Parameters  map[string]any     `json:"parameters"`
	Image       string             `json:"image"`
	Steps       map[string]rawStep `json:"steps"`
}

type rawStep struct {
	Description string                     `json:"description"`
	Run         []string                   `json:"run"`
	Image       string                     `json:"image"`
	Network     bool                       `json:"network"`
	Code        []string                   `json:"code"`
	Inputs      map[string]rawInput        `json:"inputs"`
	Outputs     map[string]rawOutput       `json:"outputs"`
	Parameters  map[string]any             `json:"parameters"`
	Env         map[string]json.RawMessage `json:"env"`
	Cache       *bool                      `json:"cache"`
	Retries     json.RawMessage            `json:"retries"`
	Timeout     string                     `json:"timeout"`
	Resources   *Resources                 `json:"resources"`
}

type rawInput struct {
	Type string `json:"type"`
	Ref  string `json:"ref"`
	File string `json:"file"`
	Dir  string `json:"dir"`
	// Ignored: a file or dir input that git ignores is meant.
	Ignored bool   `json:"ignored"`
	Data    string `json:"data"`
	Model   string `json:"model"`
	Stage   string `json:"stage"`
}

type rawOutput struct {
	Type  string `json:"type"`
	Model string `json:"model"`
	// A plot's: y is a name or a list of names.
	X     *string         `json:"x"`
	Y     json.RawMessage `json:"y"`
	Title *string         `json:"title"`
}
