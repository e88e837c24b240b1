package schema

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// Override replaces a parameter's value for one run (`zen apply --set`).
// Path is PIPELINE.PARAM for a pipeline parameter or PIPELINE.STEP.PARAM
// for a step's own parameter, either followed by the fields of a struct
// parameter down to the one to set: PIPELINE.PARAM.FIELD.FIELD.
type Override struct {
	Path  string
	Value string
}

// ParseOverride parses "PATH=VALUE".
func ParseOverride(s string) (Override, error) {
	path, value, ok := strings.Cut(s, "=")
	parts := strings.Split(path, ".")
	if !ok || len(parts) < 2 {
		return Override{}, fmt.Errorf("--set %q: want PIPELINE.PARAM=VALUE, PIPELINE.STEP.PARAM=VALUE, or a field of a struct parameter, PIPELINE.PARAM.FIELD=VALUE", s)
	}
	for _, p := range parts {
		if p == "" {
			return Override{}, fmt.Errorf("--set %q: empty name in %q", s, path)
		}
	}
	return Override{Path: path, Value: value}, nil
}

// ParseOverrides parses each "PATH=VALUE" of sets.
func ParseOverrides(sets []string) ([]Override, error) {
	var out []Override
	for _, s := range sets {
		o, err := ParseOverride(s)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// Set is a parameter that an override set, as loaded.
type Set struct {
	Path  string // as given: PIPELINE.PARAM.FIELD, PIPELINE.STEP.PARAM
	Field string // the field set: pipelines.P.parameters.PARAM.FIELD
	Value any    // its value now, as JSON decodes it
}

// target picks the field an override path names, given which fields
// exist: PIPELINE.A.B... is the pipeline's parameter A (field B...) when
// the pipeline has one, else step A's parameter B (field ...). Both
// existing, the pipeline's wins: steps that reference it see the value.
// It returns nil when neither exists.
func target(parts []string, exists func(path []string) bool) []string {
	pipeline := append([]string{"pipelines", parts[0], "parameters"}, parts[1:]...)
	if exists(pipeline) {
		return pipeline
	}
	if len(parts) >= 3 {
		step := append([]string{"pipelines", parts[0], "steps", parts[1], "parameters"}, parts[2:]...)
		if exists(step) {
			return step
		}
	}
	return nil
}

// fieldName writes a CUE path for messages, quoting labels that are not
// identifiers: pipelines."get-started".parameters.train.
func fieldName(path []string) string {
	sels := make([]cue.Selector, len(path))
	for i, p := range path {
		sels[i] = cue.Str(p)
	}
	return cue.MakePath(sels...).String()
}

func lookup(v cue.Value, path []string) cue.Value {
	sels := make([]cue.Selector, len(path))
	for i, p := range path {
		sels[i] = cue.Str(p)
	}
	return v.LookupPath(cue.MakePath(sels...))
}

// applyOverrides checks every override against the package as written
// (see resolve), then sets each in the files' syntax, so that whatever
// references the field sees the new value.
func (l *loader) applyOverrides(inst *build.Instance) error {
	root := cuecontext.New().BuildInstance(inst)
	if err := root.Err(); err != nil {
		return l.cueErrors(err)
	}
	type change struct {
		o    Override
		path []string
		expr ast.Expr
	}
	var changes []change
	for _, o := range l.overrides {
		path, expr, err := l.resolve(root, o)
		if err != nil {
			return err
		}
		changes = append(changes, change{o, path, expr})
	}
	for _, c := range changes {
		if !applyOverride(inst.Files, c.path, c.expr) {
			from := ""
			if p := l.relPos(lookup(root, c.path).Pos()); p.File != "" {
				from = " (its value comes from " + p.String() + ")"
			}
			base := c.path[:3] // pipelines P parameters
			if c.path[2] == "steps" {
				base = c.path[:5] // pipelines P steps S parameters
			}
			return fmt.Errorf("--set %s: %s has no value written under %s to replace%s: --set replaces a value written there; change it where it comes from, or write it there", c.o.Path, fieldName(c.path), fieldName(base), from)
		}
	}
	return nil
}

// resolve checks an override against the package as written, before any
// override is applied: the pipeline, the field it names, and its value's
// kind against the declared value's. It returns the field's path and the
// expression to put in place of its value.
func (l *loader) resolve(root cue.Value, o Override) ([]string, ast.Expr, error) {
	parts := strings.Split(o.Path, ".")
	fail := func(format string, args ...any) ([]string, ast.Expr, error) {
		return nil, nil, fmt.Errorf("--set %s: %s", o.Path, fmt.Sprintf(format, args...))
	}
	pipelines := root.LookupPath(cue.ParsePath("pipelines"))
	pv := lookup(pipelines, parts[:1])
	if !pv.Exists() {
		return fail("no pipeline %s (pipelines: %s)", parts[0], listOr(labels(pipelines), "none"))
	}
	path := target(parts, func(p []string) bool { return lookup(root, p).Exists() })
	if path == nil {
		return fail("%s", l.noParameter(pv, parts))
	}
	declared := lookup(root, path)
	expr, err := o.valueFor(declared)
	if err != nil {
		where := ""
		if p := l.relPos(declared.Pos()); p.File != "" {
			where = " at " + p.String()
		}
		return fail("%s, as declared%s (%s)", err, where, clipValue(declared))
	}
	return path, expr, nil
}

// noParameter explains why PIPELINE.A.B... names no parameter, naming
// the parameters there are where the path left them.
func (l *loader) noParameter(pv cue.Value, parts []string) string {
	params := pv.LookupPath(cue.ParsePath("parameters"))
	if lookup(params, parts[1:2]).Exists() {
		return missingField(params, parts[1:], "pipeline "+parts[0])
	}
	step := lookup(pv.LookupPath(cue.ParsePath("steps")), parts[1:2])
	if step.Exists() && len(parts) >= 3 {
		sp := step.LookupPath(cue.ParsePath("parameters"))
		return missingField(sp, parts[2:], "step "+parts[1]+" of pipeline "+parts[0])
	}
	msg := fmt.Sprintf("pipeline %s has no parameter %s (parameters: %s", parts[0], parts[1], listOr(labels(params), "none"))
	var own []string
	for _, sn := range labels(pv.LookupPath(cue.ParsePath("steps"))) {
		for _, p := range labels(lookup(pv, []string{"steps", sn, "parameters"})) {
			own = append(own, sn+"."+p)
		}
	}
	if len(own) > 0 {
		msg += "; its steps' own: " + list(own)
	}
	if step.Exists() {
		msg += "; step " + parts[1] + " is a step: name its parameter, " + parts[0] + "." + parts[1] + ".PARAM"
	}
	return msg + ")"
}

// missingField explains why path names no field of the struct v, whose
// first field exists: the deepest field the path reaches, and what it
// holds.
func missingField(v cue.Value, path []string, in string) string {
	at := 0
	for at < len(path) && lookup(v, path[:at+1]).Exists() {
		at++
	}
	reached := lookup(v, path[:at])
	name := strings.Join(path, ".")
	have := strings.Join(path[:at], ".")
	if at == 0 {
		return fmt.Sprintf("%s has no parameter %s (parameters: %s)", in, name, listOr(labels(v), "none"))
	}
	if reached.IncompleteKind() != cue.StructKind {
		return fmt.Sprintf("%s has no parameter %s: %s is %s, not a struct (set it whole: %s=VALUE)", in, name, have, clipValue(reached), have)
	}
	return fmt.Sprintf("%s has no parameter %s (%s holds: %s)", in, name, have, listOr(labels(reached), "nothing"))
}

// labels returns the regular fields of a struct, sorted.
func labels(v cue.Value) []string {
	var out []string
	it, err := v.Fields()
	if err != nil {
		return nil
	}
	for it.Next() {
		out = append(out, it.Selector().Unquoted())
	}
	slices.Sort(out)
	return out
}

// list joins names for a message, the first 20 of them.
func list(names []string) string {
	if len(names) > 20 {
		return strings.Join(names[:20], ", ") + fmt.Sprintf(" and %d more", len(names)-20)
	}
	return strings.Join(names, ", ")
}

func listOr(names []string, none string) string {
	if len(names) == 0 {
		return none
	}
	return list(names)
}

// clipValue shows a value for a message, cut to 60 bytes.
func clipValue(v cue.Value) string {
	b, err := v.MarshalJSON()
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 60 {
		return string(b[:57]) + "…"
	}
	return string(b)
}

// valueFor turns the override's text into the expression to set, checked
// against the declared value: a parameter declared a string takes the
// text as it is (a quoted CUE string is unquoted); any other takes a CUE
// literal (number, bool, null, quoted string, list, struct) of its kind,
// an int where a float is declared too. A parameter declared null or _
// takes any literal, and other text as a string.
func (o Override) valueFor(declared cue.Value) (ast.Expr, error) {
	dk := declared.IncompleteKind()
	e, lit := o.literal()
	if dk == cue.StringKind {
		if b, ok := e.(*ast.BasicLit); lit && ok && b.Kind == token.STRING {
			return e, nil
		}
		return ast.NewString(o.Value), nil
	}
	open := dk == cue.NullKind || dk == cue.TopKind
	if !lit {
		if open || dk&cue.StringKind != 0 {
			return ast.NewString(o.Value), nil
		}
		return nil, fmt.Errorf("%s is not %s", clipText(o.Value), kindName(dk))
	}
	nk := cuecontext.New().BuildExpr(e).IncompleteKind()
	if open || nk&dk != 0 || nk == cue.IntKind && dk&cue.FloatKind != 0 {
		return e, nil
	}
	return nil, fmt.Errorf("%s is %s, not %s", clipText(o.Value), kindName(nk), kindName(dk))
}

// clipText shows text from the command line in a message: quoted when it
// holds more than letters, digits and . _ -, and cut to 60 bytes.
func clipText(s string) string {
	if len(s) > 60 {
		s = s[:57] + "…"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-+", r)) {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}

func kindName(k cue.Kind) string {
	switch k {
	case cue.IntKind:
		return "an int"
	case cue.FloatKind, cue.NumberKind:
		return "a number"
	case cue.StringKind:
		return "a string"
	case cue.BoolKind:
		return "a bool"
	case cue.StructKind:
		return "a struct"
	case cue.ListKind:
		return "a list"
	case cue.NullKind:
		return "null"
	}
	return "a value of kind " + k.String()
}

// literal parses the value as a CUE literal (number, bool, null, quoted
// string, list, struct).
func (o Override) literal() (ast.Expr, bool) {
	if e, err := parser.ParseExpr("--set", o.Value); err == nil && isLiteral(e) {
		return e, true
	}
	return nil, false
}

func isLiteral(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.Ident:
		return e.Name == "true" || e.Name == "false" || e.Name == "null"
	case *ast.UnaryExpr:
		_, ok := e.X.(*ast.BasicLit)
		return ok && (e.Op == token.SUB || e.Op == token.ADD)
	case *ast.ListLit:
		for _, x := range e.Elts {
			if !isLiteral(x) {
				return false
			}
		}
		return true
	case *ast.StructLit:
		for _, d := range e.Elts {
			f, ok := d.(*ast.Field)
			if !ok || !isLiteral(f.Value) {
				return false
			}
		}
		return true
	}
	return false
}

// isConstraint reports whether e only constrains a value, so that it
// stays beside the value set: built of types (int, string, ...), bounds
// (>0, =~"re"), literals, defaults (*1) and their conjunctions and
// disjunctions, with no reference to another field.
func isConstraint(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		switch e.Name {
		case "int", "float", "number", "string", "bytes", "bool", "null", "true", "false", "_":
			return true
		}
		return false
	case *ast.BasicLit:
		return true
	case *ast.ParenExpr:
		return isConstraint(e.X)
	case *ast.UnaryExpr:
		return isConstraint(e.X)
	case *ast.BinaryExpr:
		return (e.Op == token.AND || e.Op == token.OR) && isConstraint(e.X) && isConstraint(e.Y)
	}
	return false
}

// applyOverride sets the field at path to value in the files' syntax:
// each declaration of it that gives a value (a literal, a reference)
// gets the new value, and a constraint (int & >0, "a" | "b") stays
// beside it, so that the new value is checked against it. It reports
// whether a declaration was found.
func applyOverride(files []*ast.File, path []string, value ast.Expr) bool {
	found := false
	for _, f := range files {
		if replaceField(f.Decls, path, value) {
			found = true
		}
	}
	return found
}

func replaceField(decls []ast.Decl, path []string, value ast.Expr) bool {
	found := false
	for _, d := range decls {
		f, ok := d.(*ast.Field)
		if !ok {
			if em, ok := d.(*ast.EmbedDecl); ok {
				if s, ok := em.Expr.(*ast.StructLit); ok && replaceField(s.Elts, path, value) {
					found = true
				}
			}
			continue
		}
		name, _, err := ast.LabelName(f.Label)
		if err != nil || name != path[0] {
			continue
		}
		if len(path) == 1 {
			if isConstraint(f.Value) && !isLiteral(f.Value) {
				f.Value = &ast.BinaryExpr{X: &ast.ParenExpr{X: f.Value}, Op: token.AND, Y: value}
			} else {
				f.Value = value
			}
			found = true
			continue
		}
		if s, ok := f.Value.(*ast.StructLit); ok && replaceField(s.Elts, path[1:], value) {
			found = true
		}
	}
	return found
}

// sets finds, in a loaded configuration, the field each override set and
// its value.
func sets(cfg *Config, overrides []Override) []Set {
	var out []Set
	for _, o := range overrides {
		parts := strings.Split(o.Path, ".")
		path := target(parts, func(p []string) bool { _, ok := cfg.param(p); return ok })
		if path == nil {
			continue // checked when the package was evaluated
		}
		v, _ := cfg.param(path)
		// Numbers as json.Number, as they were decoded, are recorded as
		// float64, as a record read back has them.
		if b, err := json.Marshal(v); err == nil {
			_ = json.Unmarshal(b, &v)
		}
		out = append(out, Set{Path: o.Path, Field: fieldName(path), Value: v})
	}
	return out
}

// param returns the value at a parameter's path in the configuration:
// pipelines P parameters ... or pipelines P steps S parameters ....
func (c *Config) param(path []string) (any, bool) {
	p := c.Pipelines[path[1]]
	if p == nil {
		return nil, false
	}
	var cur any
	var rest []string
	switch {
	case path[2] == "parameters":
		cur, rest = map[string]any(p.Parameters), path[3:]
	case len(path) >= 5 && path[2] == "steps" && p.Steps[path[3]] != nil:
		cur, rest = map[string]any(p.Steps[path[3]].Parameters), path[5:]
	default:
		return nil, false
	}
	for _, k := range rest {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}
