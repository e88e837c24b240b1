package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/token"
	"github.com/bmatcuk/doublestar/v4"

	"github.com/zen-dev/zen/schema/gate"
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
}

type rawPipeline struct {
	Description string             `json:"description"`
	Parameters  map[string]any     `json:"parameters"`
	Steps       map[string]rawStep `json:"steps"`
}

type rawStep struct {
	Description string                     `json:"description"`
	Run         []string                   `json:"run"`
	Image       string                     `json:"image"`
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
	Type  string `json:"type"`
	Ref   string `json:"ref"`
	File  string `json:"file"`
	Dir   string `json:"dir"`
	Model string `json:"model"`
	Stage string `json:"stage"`
}

type rawOutput struct {
	Type  string `json:"type"`
	Model string `json:"model"`
}

// checkNames reports every name that breaks the name rule (#Name in
// schema.cue), once, at the name, with a name to write instead. The
// schema takes any label, so that a bad name is this one error rather
// than "field not allowed" for every field beneath it.
func (l *loader) checkNames(raw *rawZen) {
	check := func(kind, name string, at ...string) {
		if err := CheckName(kind, name); err != nil {
			// The message names what it is about: the path would only
			// say the name again.
			l.errs = append(l.errs, &Error{Pos: l.pos(at...), Path: strings.Join(at, "."), Msg: err.Error(), pathInMsg: true})
		}
	}
	// A name used as a value is checked where it is not declared: a
	// declared one is reported at its declaration.
	stages := map[string]map[string]json.RawMessage{}
	for mn, rm := range raw.Models {
		var m struct {
			Stages map[string]json.RawMessage `json:"stages"`
		}
		_ = json.Unmarshal(rm, &m)
		stages[mn] = m.Stages
	}
	declaredModel := func(m string) bool { _, ok := stages[m]; return ok }
	declaredStage := func(m, s string) bool { _, ok := stages[m][s]; return ok }
	if _, ok := raw.Stacks[raw.DefaultStack]; !ok {
		check("stack", raw.DefaultStack, "default_stack")
	}
	for _, sn := range slices.Sorted(maps.Keys(raw.Stacks)) {
		check("stack", sn, "stacks", sn)
	}
	for _, pn := range slices.Sorted(maps.Keys(raw.Pipelines)) {
		check("pipeline", pn, "pipelines", pn)
		rp := raw.Pipelines[pn]
		for _, sn := range slices.Sorted(maps.Keys(rp.Steps)) {
			at := []string{"pipelines", pn, "steps", sn}
			check("step", sn, at...)
			rs := rp.Steps[sn]
			for _, in := range slices.Sorted(maps.Keys(rs.Inputs)) {
				check("input", in, append(at, "inputs", in)...)
				ri := rs.Inputs[in]
				if ri.Model != "" && !declaredModel(ri.Model) {
					check("model", ri.Model, append(at, "inputs", in, "model")...)
				}
				if ri.Stage != "" && !declaredStage(ri.Model, ri.Stage) {
					check("stage", ri.Stage, append(at, "inputs", in, "stage")...)
				}
			}
			for _, on := range slices.Sorted(maps.Keys(rs.Outputs)) {
				check("output", on, append(at, "outputs", on)...)
				if m := rs.Outputs[on].Model; m != "" && !declaredModel(m) {
					check("model", m, append(at, "outputs", on, "model")...)
				}
			}
		}
	}
	for _, mn := range slices.Sorted(maps.Keys(raw.Models)) {
		check("model", mn, "models", mn)
		var rm struct {
			Versions map[string]json.RawMessage `json:"versions"`
		}
		_ = json.Unmarshal(raw.Models[mn], &rm)
		for _, v := range slices.Sorted(maps.Keys(rm.Versions)) {
			if !ValidVersion(v) {
				at := []string{"models", mn, "versions", v}
				l.errs = append(l.errs, &Error{Pos: l.pos(at...), Path: strings.Join(at, "."), pathInMsg: true,
					Msg: fmt.Sprintf("model %s version %s: %s; write a version such as \"1.0.0\"", mn, clipName(v), VersionRule)})
			}
		}
		for _, st := range slices.Sorted(maps.Keys(stages[mn])) {
			check("stage", st, "models", mn, "stages", st)
		}
	}
}

func (l *loader) convert(raw *rawZen) *Config {
	cfg := &Config{
		Root:         l.root,
		DefaultStack: raw.DefaultStack,
		Pipelines:    map[string]*Pipeline{},
		Stacks:       map[string]*Stack{},
		Models:       map[string]*Model{},
	}
	for name, rs := range raw.Stacks {
		cfg.Stacks[name] = l.stack(name, rs)
	}
	if len(cfg.Stacks) > 0 || raw.DefaultStack != "local" {
		if _, ok := cfg.Stacks[cfg.DefaultStack]; !ok {
			if l.user.Exists() && l.user.LookupPath(cue.ParsePath("default_stack")).Exists() {
				l.errorf(l.pos("default_stack"), "default_stack", "unknown stack %q (stacks: %s)", cfg.DefaultStack, strings.Join(cfg.StackNames(), ", "))
			} else {
				l.errorf(l.pos("stacks"), "default_stack", "no stack named %q, the default: add one or set default_stack to one of %s", cfg.DefaultStack, strings.Join(cfg.StackNames(), ", "))
			}
		}
	}
	for _, pname := range slices.Sorted(maps.Keys(raw.Pipelines)) {
		rp := raw.Pipelines[pname]
		p := &Pipeline{Name: pname, Description: rp.Description, Parameters: rp.Parameters, Steps: map[string]*Step{}}
		for _, sname := range slices.Sorted(maps.Keys(rp.Steps)) {
			p.Steps[sname] = l.step(pname, sname, rp.Steps[sname])
		}
		l.checkRefs(p)
		p.Order = l.order(p)
		cfg.Pipelines[pname] = p
	}
	for _, name := range slices.Sorted(maps.Keys(raw.Models)) {
		cfg.Models[name] = l.model(cfg, name, raw.Models[name])
	}
	for _, pn := range cfg.PipelineNames() {
		for _, sn := range slices.Sorted(maps.Keys(cfg.Pipelines[pn].Steps)) {
			s := cfg.Pipelines[pn].Steps[sn]
			for _, on := range s.OutputNames() {
				if m := s.Outputs[on].Model; m != "" && cfg.Models[m] == nil {
					at := []string{"pipelines", pn, "steps", sn, "outputs", on, "model"}
					l.errorf(l.pos(at...), strings.Join(at, "."), "no model %q in models", m)
				}
			}
		}
	}
	return cfg
}

// model decodes a model and checks its stages, gates and binding.
func (l *loader) model(cfg *Config, name string, raw json.RawMessage) *Model {
	m := &Model{Name: name, Versions: map[string]json.RawMessage{}, Stages: map[string]string{}, Gates: map[string]*gate.Expr{}}
	var rm struct {
		ModelInfo
		Versions map[string]json.RawMessage `json:"versions"`
		Stages   map[string]string          `json:"stages"`
		Gates    map[string]string          `json:"gates"`
	}
	_ = json.Unmarshal(raw, &rm)
	m.Info = rm.ModelInfo
	for v, decl := range rm.Versions {
		var buf bytes.Buffer
		_ = json.Compact(&buf, decl)
		m.Versions[v] = buf.Bytes()
	}
	for stage, v := range rm.Stages {
		m.Stages[stage] = v
		if _, ok := m.Versions[v]; !ok {
			l.errorf(l.pos("models", name, "stages", stage), "models."+name+".stages."+stage, "version %s is not declared in models.%s.versions", v, name)
		}
	}
	for _, stage := range slices.Sorted(maps.Keys(rm.Gates)) {
		path := "models." + name + ".gates." + stage
		if _, ok := m.Stages[stage]; !ok {
			l.errorf(l.pos("models", name, "gates", stage), path, "no stage %q in models.%s.stages", stage, name)
			continue
		}
		e, err := gate.Parse(rm.Gates[stage], m.StageNames())
		if err != nil {
			l.errorf(l.pos("models", name, "gates", stage), path, "%v", err)
			continue
		}
		m.Gates[stage] = e
	}
	for _, pn := range cfg.PipelineNames() {
		p := cfg.Pipelines[pn]
		for _, sn := range slices.Sorted(maps.Keys(p.Steps)) {
			s := p.Steps[sn]
			for _, on := range s.OutputNames() {
				if s.Outputs[on].Model != name {
					continue
				}
				at := []string{"pipelines", pn, "steps", sn, "outputs", on, "model"}
				if m.Output != "" {
					l.errorf(l.pos(at...), strings.Join(at, "."), "model %s is produced by %s.%s.%s already: bind one output per model", name, m.Pipeline, m.Step, m.Output)
					continue
				}
				if s.Outputs[on].Type != "model" {
					l.errorf(l.pos(at...), strings.Join(at, "."), "only an output of type model can be bound to a model")
				}
				m.Pipeline, m.Step, m.Output = pn, sn, on
			}
		}
	}
	return m
}

func (l *loader) stack(name string, rs map[string]any) *Stack {
	st := &Stack{Name: name}
	st.Description, _ = rs["description"].(string)
	st.Signer, _ = rs["signer"].(map[string]any)
	comp := func(field string, known []string) Component {
		m, _ := rs[field].(map[string]any)
		c := Component{Settings: map[string]any{}}
		for k, v := range m {
			if k == "flavor" {
				c.Flavor, _ = v.(string)
			} else {
				c.Settings[k] = v
			}
		}
		if !contains(known, c.Flavor) {
			path := []string{"stacks", name, field, "flavor"}
			l.errorf(l.pos(path...), strings.Join(path, "."), "unknown %s flavor %q (known: %s)", strings.ReplaceAll(field, "_", " "), c.Flavor, strings.Join(known, ", "))
		}
		return c
	}
	st.Orchestrator = comp("orchestrator", OrchestratorFlavors)
	st.ArtifactStore = comp("artifact_store", ArtifactStoreFlavors)
	if st.ArtifactStore.Flavor == "oci" && st.ArtifactStore.String("repository") == "" {
		path := []string{"stacks", name, "artifact_store", "repository"}
		l.errorf(l.pos(path[:3]...), strings.Join(path, "."), "an oci artifact store needs a repository, such as \"registry.example.com/ml\"")
	}
	return st
}

func (l *loader) step(pname, sname string, rs rawStep) *Step {
	base := []string{"pipelines", pname, "steps", sname}
	at := func(rest ...string) ([]string, string) {
		p := append(append([]string{}, base...), rest...)
		return p, strings.Join(p, ".")
	}
	s := &Step{
		Pipeline:    pname,
		Name:        sname,
		Description: rs.Description,
		Run:         rs.Run,
		Image:       rs.Image,
		Code:        rs.Code,
		Inputs:      map[string]*Input{},
		Outputs:     map[string]*Output{},
		Parameters:  rs.Parameters,
		Env:         map[string]EnvValue{},
		Cache:       rs.Cache == nil || *rs.Cache,
		Resources:   rs.Resources,
	}
	if s.Parameters == nil {
		s.Parameters = map[string]any{}
	}
	for _, name := range slices.Sorted(maps.Keys(rs.Outputs)) {
		ro := rs.Outputs[name]
		s.Outputs[name] = &Output{Name: name, Type: ro.Type, Model: ro.Model}
		if !contains(OutputTypes, ro.Type) {
			p, ps := at("outputs", name, "type")
			l.errorf(l.pos(p...), ps, "unknown output type %q (want one of %s)", ro.Type, strings.Join(OutputTypes, ", "))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(rs.Inputs)) {
		ri := rs.Inputs[name]
		in := &Input{Name: name}
		kinds := 0
		for _, set := range []bool{ri.Ref != "", ri.File != "", ri.Dir != "", ri.Stage != ""} {
			if set {
				kinds++
			}
		}
		if kinds != 1 || (ri.Ref == "" && ri.Type != "") || (ri.Stage != "" && ri.Model == "") || (ri.Model != "" && ri.Ref == "" && ri.Stage == "") {
			p, ps := at("inputs", name)
			l.errorf(l.pos(p...), ps, "an input is one of: another step's output (steps.NAME.outputs.NAME), {file: PATH}, {dir: PATH}, or {model: NAME, stage: NAME}")
			continue
		}
		switch {
		case ri.Ref != "":
			parts := strings.Split(ri.Ref, ".")
			in.Kind, in.Type = InputStep, ri.Type
			if len(parts) == 3 {
				in.Step, in.Output = parts[1], parts[2]
			}
			if len(parts) != 3 || slices.Contains(parts, "") {
				p, ps := at("inputs", name)
				l.errorf(l.pos(p...), ps, "ref %q: want PIPELINE.STEP.OUTPUT, as a reference steps.STEP.outputs.OUTPUT makes it", ri.Ref)
				in.Step, in.Output = "", ""
			} else if parts[0] != pname {
				p, ps := at("inputs", name)
				l.errorf(l.pos(p...), ps, "references pipeline %s (%s): a step can only read outputs of its own pipeline", parts[0], ri.Ref)
				in.Step, in.Output = "", ""
			} else if in.Step == sname {
				p, ps := at("inputs", name)
				l.errorf(l.pos(p...), ps, "step %s reads its own output %s", sname, in.Output)
			}
		case ri.Stage != "":
			in.Kind, in.Model, in.Stage = InputModel, ri.Model, ri.Stage
		case ri.Dir != "":
			in.Kind, in.Path = InputDir, ri.Dir
		default:
			in.Kind, in.Path = InputFile, ri.File
		}
		if in.Kind == InputFile || in.Kind == InputDir {
			p, ps := at("inputs", name, string(in.Kind))
			if msg := l.checkRepoPath(in.Path, in.Kind == InputDir); msg != "" {
				l.errorf(l.pos(p...), ps, "%s", msg)
			}
		}
		s.Inputs[name] = in
	}
	for _, name := range slices.Sorted(maps.Keys(rs.Env)) {
		var ev EnvValue
		if err := json.Unmarshal(rs.Env[name], &ev.Value); err != nil {
			var sec struct {
				Secret string `json:"secret"`
			}
			_ = json.Unmarshal(rs.Env[name], &sec)
			ev.Secret = sec.Secret
		}
		s.Env[name] = ev
	}
	if n, err := json.Number(strings.TrimSpace(string(rs.Retries))).Int64(); err == nil || len(rs.Retries) == 0 {
		s.Retries = Retries{Attempts: int(n), Backoff: time.Second}
	} else {
		var rr struct {
			Attempts        int    `json:"attempts"`
			ExceptExitCodes []int  `json:"except_exit_codes"`
			Backoff         string `json:"backoff"`
		}
		_ = json.Unmarshal(rs.Retries, &rr)
		s.Retries = Retries{Attempts: rr.Attempts, ExceptExitCodes: rr.ExceptExitCodes}
		if rr.Backoff == "" {
			rr.Backoff = "1s"
		}
		d, err := time.ParseDuration(rr.Backoff)
		if err != nil || d < 0 {
			p, ps := at("retries", "backoff")
			l.errorf(l.pos(p...), ps, "invalid backoff %q: want a Go duration such as \"1s\"", rr.Backoff)
		}
		s.Retries.Backoff = d
	}
	if rs.Timeout != "" {
		d, err := time.ParseDuration(rs.Timeout)
		if err != nil || d <= 0 {
			p, ps := at("timeout")
			l.errorf(l.pos(p...), ps, "invalid timeout %q: want a positive Go duration such as \"30m\"", rs.Timeout)
		}
		s.Timeout = d
	}
	if r := rs.Resources; r != nil && r.Time != "" {
		if d, err := time.ParseDuration(r.Time); err != nil || d <= 0 {
			p, ps := at("resources", "time")
			l.errorf(l.pos(p...), ps, "invalid time %q: want a positive Go duration such as \"2h\"", r.Time)
		}
	}
	for i, g := range s.Code {
		if msg := l.checkCode(g); msg != "" {
			p, ps := at("code")
			l.errorf(l.posElem(i, p...), fmt.Sprintf("%s[%d]", ps, i), "%s", msg)
		}
	}
	return s
}

// checkCode checks a code: glob: its syntax, that it stays in the
// repository, and that it matches a file (outside zen's own folder), so
// that a typo cannot leave code out of the cache key.
func (l *loader) checkCode(g string) string {
	if !doublestar.ValidatePattern(g) {
		return fmt.Sprintf("%q: syntax error in pattern", g)
	}
	if strings.HasPrefix(g, "/") {
		return fmt.Sprintf("%s: path must be relative to the repository root", g)
	}
	if slices.Contains(strings.Split(g, "/"), "..") {
		return fmt.Sprintf("%s: path leaves the repository", g)
	}
	// The part before the first wildcard, as an input path is.
	if prefix, _ := doublestar.SplitPattern(g); prefix != "." {
		if real, err := filepath.EvalSymlinks(filepath.Join(l.root, filepath.FromSlash(prefix))); err == nil {
			if rel, err := filepath.Rel(l.realRoot(), real); err != nil || !filepath.IsLocal(rel) {
				return fmt.Sprintf("%s: %s links outside the repository (to %s)", g, prefix, real)
			}
		}
	}
	found := false
	_ = doublestar.GlobWalk(os.DirFS(l.root), g, func(p string, d fs.DirEntry) error {
		if p == ".zen" || strings.HasPrefix(p, ".zen/") {
			return nil
		}
		found = true
		return fs.SkipAll
	}, doublestar.WithFilesOnly())
	if !found {
		return fmt.Sprintf("%q matches no file", g)
	}
	return ""
}

// checkUTF8 reports, for each CUE file that is not UTF-8, where its first
// bad byte is: CUE takes such bytes in strings as they are, and the JSON
// zen decodes would turn them into U+FFFD without a word.
func (l *loader) checkUTF8(files []*build.File) Errors {
	var errs Errors
	for _, f := range files {
		b, err := os.ReadFile(f.Filename)
		if err != nil || utf8.Valid(b) {
			continue
		}
		pos := Pos{File: f.Filename, Line: 1, Col: 1}
		if rel, err := filepath.Rel(l.root, f.Filename); err == nil && !strings.HasPrefix(rel, "..") {
			pos.File = filepath.ToSlash(rel)
		}
		for i := 0; i < len(b); {
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				errs = append(errs, &Error{Pos: pos, Msg: fmt.Sprintf("invalid UTF-8 (byte %#x): CUE files are UTF-8", b[i])})
				break
			}
			if b[i] == '\n' {
				pos.Line, pos.Col = pos.Line+1, 1
			} else {
				pos.Col += n
			}
			i += n
		}
	}
	return errs
}

// checkRepoPath checks an input path: relative, inside the repository,
// present, and a file or a folder as declared.
func (l *loader) checkRepoPath(p string, dir bool) string {
	if msg := checkRel(p); msg != "" {
		return msg
	}
	abs := filepath.Join(l.root, filepath.FromSlash(p))
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("%s: no such file or directory", p)
	case err != nil:
		return err.Error()
	case dir && !fi.IsDir():
		return fmt.Sprintf("%s is not a directory (use file: for a file)", p)
	case !dir && fi.IsDir():
		return fmt.Sprintf("%s is a directory (use dir: for a directory)", p)
	}
	// A symlink on the way (data/passwd -> /etc/passwd) must not lead out
	// of the repository either: what a step reads is the repository's.
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return err.Error()
	}
	if rel, err := filepath.Rel(l.realRoot(), real); err != nil || !filepath.IsLocal(rel) {
		return fmt.Sprintf("%s links outside the repository (to %s)", p, real)
	}
	return ""
}

// realRoot is the repository's root with its symlinks resolved.
func (l *loader) realRoot() string {
	if l.resolvedRoot == "" {
		l.resolvedRoot = l.root
		if r, err := filepath.EvalSymlinks(l.root); err == nil {
			l.resolvedRoot = r
		}
	}
	return l.resolvedRoot
}

// checkRel reports why p is not a clean relative path inside the
// repository, or "".
func checkRel(p string) string {
	switch {
	case p == "":
		return ""
	case strings.ContainsRune(p, 0):
		return fmt.Sprintf("%q: a path cannot hold a NUL byte", p)
	case strings.HasPrefix(p, "/") || filepath.IsAbs(p):
		return fmt.Sprintf("%s: path must be relative to the repository root", p)
	case p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/.."):
		return fmt.Sprintf("%s: path leaves the repository", p)
	}
	return ""
}

// checkRefs checks that every input read from another step names a step
// of the pipeline and one of its outputs. A reference in CUE
// (steps.load.outputs.train) cannot do otherwise, but a ref written by
// hand as a string can.
func (l *loader) checkRefs(p *Pipeline) {
	for _, sname := range slices.Sorted(maps.Keys(p.Steps)) {
		s := p.Steps[sname]
		for _, name := range s.InputNames() {
			in := s.Inputs[name]
			if in.Kind != InputStep || in.Step == "" || in.Step == sname {
				continue // reported already: a malformed ref, or its own output
			}
			at := []string{"pipelines", p.Name, "steps", sname, "inputs", name}
			up, ok := p.Steps[in.Step]
			switch {
			case !ok:
				l.errorf(l.pos(at...), strings.Join(at, "."), "no step %s in pipeline %s", in.Step, p.Name)
			case up.Outputs[in.Output] == nil:
				l.errorf(l.pos(at...), strings.Join(at, "."), "step %s has no output %s (outputs: %s)", in.Step, in.Output, strings.Join(up.OutputNames(), ", "))
			}
		}
	}
}

// order sorts the steps topologically and reports cycles.
func (l *loader) order(p *Pipeline) []string {
	indeg := map[string]int{}
	down := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(p.Steps)) {
		s := p.Steps[name]
		for _, up := range s.Upstream() {
			if _, ok := p.Steps[up]; !ok {
				continue // CUE reported the dangling reference already
			}
			indeg[name]++
			down[up] = append(down[up], name)
		}
	}
	var ready, order []string
	for _, name := range slices.Sorted(maps.Keys(p.Steps)) {
		if indeg[name] == 0 {
			ready = append(ready, name)
		}
	}
	for len(ready) > 0 {
		sort.Strings(ready)
		n := ready[0]
		ready = ready[1:]
		order = append(order, n)
		for _, d := range down[n] {
			if indeg[d]--; indeg[d] == 0 {
				ready = append(ready, d)
			}
		}
	}
	if len(order) < len(p.Steps) {
		l.cycle(p, indeg)
	}
	return order
}

// cycle reports one cycle among the steps left with incoming edges.
func (l *loader) cycle(p *Pipeline, indeg map[string]int) {
	var start string
	for _, name := range slices.Sorted(maps.Keys(p.Steps)) {
		if indeg[name] > 0 {
			start = name
			break
		}
	}
	// Walk upstream edges among the remaining steps until a step repeats.
	seen := map[string]int{}
	var path []string
	for cur := start; ; {
		if i, ok := seen[cur]; ok {
			path = path[i:]
			break
		}
		seen[cur] = len(path)
		path = append(path, cur)
		for _, up := range p.Steps[cur].Upstream() {
			if indeg[up] > 0 {
				cur = up
				break
			}
		}
	}
	// path lists each step followed by one it reads from; print it in data-flow order.
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	first := path[0]
	var in string
	for _, name := range p.Steps[first].InputNames() {
		if p.Steps[first].Inputs[name].Step == path[len(path)-1] {
			in = name
		}
	}
	loc := []string{"pipelines", p.Name, "steps", first, "inputs", in}
	l.errorf(l.pos(loc...), strings.Join(loc, "."), "cycle: %s → %s", strings.Join(path, " → "), first)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pos returns the position of a field in the user's package.
func (l *loader) pos(path ...string) Pos {
	if !l.user.Exists() {
		return Pos{} // decoded from the cache: the next, full load has positions
	}
	// The deepest field of path that exists. CUE names a hidden field
	// (_x) or a definition (#X) in an error's path as it names a regular
	// one, so those are tried too.
	v := l.user
	for _, p := range path {
		next := v.LookupPath(cue.MakePath(cue.Str(p)))
		if !next.Exists() && strings.HasPrefix(p, "_") && l.pkg != "" {
			next = v.LookupPath(cue.MakePath(cue.Hid(p, l.pkg)))
		}
		if !next.Exists() && strings.HasPrefix(p, "#") {
			next = v.LookupPath(cue.MakePath(cue.Def(p)))
		}
		if !next.Exists() {
			break
		}
		v = next
	}
	return l.relPos(v.Pos())
}

// posElem returns the position of element i of the list at path, or of
// the list when the element has none.
func (l *loader) posElem(i int, path ...string) Pos {
	if l.user.Exists() {
		sels := make([]cue.Selector, 0, len(path)+1)
		for _, p := range path {
			sels = append(sels, cue.Str(p))
		}
		if v := l.user.LookupPath(cue.MakePath(append(sels, cue.Index(i))...)); v.Exists() {
			if p := l.relPos(v.Pos()); p.File != "" {
				return p
			}
		}
	}
	return l.pos(path...)
}

func (l *loader) relPos(p token.Pos) Pos {
	if !p.IsValid() {
		return Pos{}
	}
	file := p.Filename()
	if rel, err := filepath.Rel(l.root, file); err == nil && !strings.HasPrefix(rel, "..") {
		file = filepath.ToSlash(rel)
	}
	return Pos{File: file, Line: p.Line(), Col: p.Column()}
}

func (l *loader) errorf(pos Pos, path, format string, args ...any) {
	l.errs = append(l.errs, &Error{Pos: pos, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// cueErrors converts CUE's errors into Errors positioned in the user's files.
func (l *loader) cueErrors(err error) Errors {
	var out Errors
	seen := map[string]bool{}
	for _, e := range cueerrors.Errors(err) {
		format, args := e.Msg()
		msg := fmt.Sprintf(format, args...)
		path := strings.Join(e.Path(), ".")
		path = strings.TrimPrefix(strings.TrimPrefix(path, "#Zen"), ".")
		var pos Pos
		for _, p := range cueerrors.Positions(e) {
			if rp := l.relPos(p); rp.File != "zen-schema.cue" {
				pos = rp
				break
			}
		}
		if pos.File == "" && strings.Contains(msg, "empty disjunction") {
			continue // the disjunction's own errors follow, with positions
		}
		if msg == "field not allowed" && onlyDisjunct(err, e) {
			continue // a disjunct that did not match; its sibling explains why
		}
		if pos.File == "" && path != "" {
			pos = l.pos(strings.Split(path, ".")...)
		}
		key := pos.String() + path + msg
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, &Error{Pos: pos, Path: path, Msg: msg})
	}
	out = mostSpecific(out)
	out.sort()
	return out
}

// mostSpecific keeps, of the errors CUE reports for one field at one
// position (one per disjunct that failed), those that say the most: a
// bound or a value beats a mismatch of types.
func mostSpecific(es Errors) Errors {
	rank := func(e *Error) int {
		switch {
		case strings.Contains(e.Msg, "mismatched types"):
			return 0
		case strings.HasPrefix(e.Msg, "conflicting values"):
			return 1
		}
		return 2
	}
	best := map[string]int{}
	key := func(e *Error) string { return e.Pos.String() + " " + e.Path }
	for _, e := range es {
		if r := rank(e); r > best[key(e)] {
			best[key(e)] = r
		}
	}
	var out Errors
	merged := map[string]*Error{}
	for _, e := range es {
		if rank(e) != best[key(e)] {
			continue
		}
		// One "conflicting values A and V" per alternative A of an enum
		// becomes one error listing the alternatives.
		if m := conflict.FindStringSubmatch(e.Msg); m != nil && !strings.Contains(e.Msg, "mismatched types") {
			if prev, ok := merged[key(e)]; ok && prev.value == m[2] {
				prev.alts = append(prev.alts, m[1])
				prev.Msg = fmt.Sprintf("%s is not allowed; want one of %s", m[2], strings.Join(prev.alts, ", "))
				continue
			}
			e.value, e.alts = m[2], []string{m[1]}
			merged[key(e)] = e
		}
		out = append(out, e)
	}
	return out
}

var conflict = regexp.MustCompile(`^conflicting values (.+) and (.+)$`)

// onlyDisjunct reports whether e shares its path with another error of err:
// then e comes from a disjunct that did not apply.
func onlyDisjunct(err error, e cueerrors.Error) bool {
	for _, o := range cueerrors.Errors(err) {
		if o != e && strings.Join(o.Path(), ".") == strings.Join(e.Path(), ".") {
			if f, _ := o.Msg(); f != "field not allowed" {
				return true
			}
		}
	}
	return false
}

// Error is one problem in a repository's CUE, at a position.
type Error struct {
	Pos  Pos
	Path string // the field, such as pipelines.training.steps.train.run
	Msg  string

	value     string   // for merging enum conflicts
	alts      []string // likewise
	pathInMsg bool     // Msg names the field itself: Error leaves Path out
}

func (e *Error) Error() string {
	var b strings.Builder
	if s := e.Pos.String(); s != "" {
		b.WriteString(s + ": ")
	}
	if e.Path != "" && !e.pathInMsg {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one load.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es Errors) sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Pos, es[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}
