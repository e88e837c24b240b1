package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"cuelang.org/go/cue"

	"github.com/zen-dev/zen/schema/gate"
)

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
	for _, dn := range slices.Sorted(maps.Keys(raw.Deployments)) {
		check("deployment", dn, "deployments", dn)
		d := raw.Deployments[dn]
		if !declaredModel(d.Model) {
			check("model", d.Model, "deployments", dn, "model")
		} else if !declaredStage(d.Model, d.Stage) {
			check("stage", d.Stage, "deployments", dn, "stage")
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
		Deployments:  map[string]*Deployment{},
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
			rs := rp.Steps[sname]
			if rs.Image == "" {
				// The pipeline's image is the default of its steps.
				rs.Image = rp.Image
			}
			p.Steps[sname] = l.step(pname, sname, rs)
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
	l.deployments(cfg, raw.Deployments)
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
		Serve    *rawServe                  `json:"serve"`
	}
	_ = json.Unmarshal(raw, &rm)
	m.Info = rm.ModelInfo
	m.Serve = l.serve(name, rm.Serve)
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
	images, _ := rs["images"].(map[string]any)
	verify, _ := images["verify"].(map[string]any)
	st.ImageKey, _ = verify["key"].(string)
	st.ImagesPinned, _ = images["pinned"].(bool)
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
	if _, ok := rs["model_deployer"]; ok {
		st.ModelDeployer = comp("model_deployer", ModelDeployerFlavors)
	} else {
		st.ModelDeployer = Component{Flavor: "local", Settings: map[string]any{}}
	}
	if st.ModelDeployer.Flavor == "gitops" {
		at := []string{"stacks", name, "model_deployer"}
		if st.ArtifactStore.Flavor != "oci" {
			p := []string{"stacks", name, "artifact_store", "flavor"}
			l.errorf(l.pos(p...), strings.Join(p, "."), "the gitops model deployer needs an oci artifact store: a cluster pulls model versions from a registry, not from a %s folder", st.ArtifactStore.Flavor)
		}
		if st.ModelDeployer.String("model_volume") == "init" && st.ModelDeployer.String("zen_image") == "" {
			l.errorf(l.pos(at...), strings.Join(at, ".")+".zen_image", "model_volume init needs zen_image: zen's image, pinned by digest (name@sha256:…), whose zen models pull fetches the version in the cluster; or model_volume: \"image\" on Kubernetes 1.33 and later")
		}
	}
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
		Network:     rs.Network,
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
		s.Outputs[name].Plot = l.plotSpec(ro, func(field string) ([]string, string) { return at("outputs", name, field) })
	}
	for _, name := range slices.Sorted(maps.Keys(rs.Inputs)) {
		ri := rs.Inputs[name]
		in := &Input{Name: name}
		kinds := 0
		for _, set := range []bool{ri.Ref != "", ri.File != "", ri.Dir != "", ri.Stage != "", ri.Data != ""} {
			if set {
				kinds++
			}
		}
		if kinds != 1 || (ri.Ref == "" && ri.Type != "") || (ri.Stage != "" && ri.Model == "") || (ri.Model != "" && ri.Ref == "" && ri.Stage == "") {
			p, ps := at("inputs", name)
			l.errorf(l.pos(p...), ps, "an input is one of: another step's output (steps.NAME.outputs.NAME), {file: PATH}, {dir: PATH}, {model: NAME, stage: NAME}, or {data: NAME@sha256:…}")
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
		case ri.Data != "":
			in.Kind = InputData
			var err error
			if in.Data, in.Digest, err = ParseDataRef(ri.Data); err != nil {
				p, ps := at("inputs", name, "data")
				l.errorf(l.pos(p...), ps, "%v", err)
			}
		case ri.Dir != "":
			in.Kind, in.Path = InputDir, ri.Dir
		default:
			in.Kind, in.Path = InputFile, ri.File
		}
		if in.Kind == InputFile || in.Kind == InputDir {
			in.Ignored = ri.Ignored
			p, ps := at("inputs", name, string(in.Kind))
			if msg := l.checkRepoPath(in.Path, in.Kind == InputDir); msg != "" {
				l.errorf(l.pos(p...), ps, "%s", msg)
			} else {
				// Refused by plan, not here: zen data push, which loads
				// the CUE, is what mends it.
				in.GitIgnored = l.gitIgnores(in.Path)
			}
		} else if ri.Ignored {
			p, ps := at("inputs", name, "ignored")
			l.errorf(l.pos(p...), ps, "only a file: or dir: input can be ignored by git")
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
	if rs.Network && rs.Image == "" {
		p, ps := at("network")
		l.errorf(l.pos(p...), ps, "network applies to a step that runs in an image: add image, or remove network (a step on the host reaches what the host does)")
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

// plotSpec decodes how an output of type plot is drawn: its x, y and
// title, which no other type has. at gives a field's path.
func (l *loader) plotSpec(ro rawOutput, at func(field string) ([]string, string)) *PlotSpec {
	if ro.Type != "plot" {
		for i, set := range []bool{ro.X != nil, ro.Y != nil, ro.Title != nil} {
			if set {
				field := []string{"x", "y", "title"}[i]
				p, ps := at(field)
				l.errorf(l.pos(p...), ps, "%s is for outputs of type plot (this one is %s)", field, ro.Type)
			}
		}
		return nil
	}
	spec := &PlotSpec{}
	if ro.X != nil {
		spec.X = *ro.X
		if spec.X == "" {
			p, ps := at("x")
			l.errorf(l.pos(p...), ps, "x is empty: name the column of the x values, or leave x out to draw against the row number")
		}
	}
	if ro.Title != nil {
		spec.Title = *ro.Title
	}
	if ro.Y != nil {
		// The schema has made y a string or a list of strings.
		var one string
		if json.Unmarshal(ro.Y, &one) == nil {
			spec.Y = []string{one}
		} else {
			_ = json.Unmarshal(ro.Y, &spec.Y)
		}
		seen := map[string]bool{}
		for _, c := range spec.Y {
			p, ps := at("y")
			switch {
			case c == "":
				l.errorf(l.pos(p...), ps, "y names an empty column: name the columns to draw, or leave y out to draw every column but x")
			case c == spec.X:
				l.errorf(l.pos(p...), ps, "y names %q, the x column: name the columns to draw against it", c)
			case seen[c]:
				l.errorf(l.pos(p...), ps, "y names %q twice", c)
			}
			seen[c] = true
		}
	}
	return spec
}
