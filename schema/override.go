package schema

import (
	"encoding/json"
	"fmt"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// Override replaces a parameter's value for one run (`zen apply --set`).
// Path is PIPELINE.PARAM for a pipeline parameter or PIPELINE.STEP.PARAM
// for a step's own parameter.
type Override struct {
	Path  string
	Value string
}

// ParseOverride parses "PATH=VALUE".
func ParseOverride(s string) (Override, error) {
	path, value, ok := strings.Cut(s, "=")
	parts := strings.Split(path, ".")
	if !ok || len(parts) < 2 || len(parts) > 3 {
		return Override{}, fmt.Errorf("--set %q: want PIPELINE.PARAM=VALUE or PIPELINE.STEP.PARAM=VALUE", s)
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

// JSON returns the override's value as a Go value for records: the CUE
// literal's JSON value, or the text itself.
func (o Override) JSON() any {
	var v any
	if err := json.Unmarshal([]byte(o.Value), &v); err == nil {
		return v
	}
	return o.Value
}

// expr turns the value into a CUE expression: a literal (number, bool,
// null, quoted string, list, struct) stays one; anything else is a string.
func (o Override) expr() ast.Expr {
	if e, err := parser.ParseExpr("--set", o.Value); err == nil && isLiteral(e) {
		return e
	}
	return ast.NewString(o.Value)
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

// cuePath is where the override's field is in the package.
func (o Override) cuePath() []string {
	parts := strings.Split(o.Path, ".")
	if len(parts) == 2 {
		return []string{"pipelines", parts[0], "parameters", parts[1]}
	}
	return []string{"pipelines", parts[0], "steps", parts[1], "parameters", parts[2]}
}

// applyOverride replaces the value of every declaration of the override's
// field in the files' syntax, so that whatever references it sees the new
// value.
func applyOverride(files []*ast.File, o Override) error {
	found := false
	for _, f := range files {
		if replaceField(f.Decls, o.cuePath(), o.expr()) {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("--set %s: no such parameter: %s is not declared", o.Path, strings.Join(o.cuePath(), "."))
	}
	return nil
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
			f.Value = value
			found = true
			continue
		}
		if s, ok := f.Value.(*ast.StructLit); ok && replaceField(s.Elts, path[1:], value) {
			found = true
		}
	}
	return found
}
