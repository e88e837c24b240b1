package schema

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"
)

// ImageSite is one place in the repository's CUE where a step's image
// reference is written. zen pin rewrites a site that is a plain string
// literal in a file of the package; any other (a reference to another
// field, an interpolation, a file of an imported package) it reports with
// Why.
type ImageSite struct {
	// Pipeline and Step name the step whose image it is; a site several
	// steps share (a template's field) is listed once per step.
	Pipeline, Step string
	// Ref is the step's image reference as CUE evaluates it.
	Ref string
	// Pos is where the value is written.
	Pos Pos
	// Offset and End are the byte offsets, in Pos.File (relative to the
	// package's folder), of the string literal, quotes included; both are
	// -1 when Why is not "".
	Offset, End int
	// Why says why the site is not a literal zen can rewrite: "" when it
	// is one.
	Why string
}

// ImageSites lists where the image of every step of the CUE package in
// dir is written, sorted by pipeline and step. A step whose image is the
// unification of several values lists each value that is concrete. The
// package must evaluate; it is not checked against the schema (Load does
// that).
func ImageSites(dir string) ([]ImageSite, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	l := &loader{root: root, ctx: cuecontext.New()}
	insts := load.Instances([]string{"."}, &load.Config{Dir: root})
	if len(insts) != 1 {
		return nil, fmt.Errorf("%s: expected one CUE package, found %d", root, len(insts))
	}
	if err := insts[0].Err; err != nil {
		return nil, l.cueErrors(err)
	}
	l.user = l.ctx.BuildInstance(insts[0])
	if err := l.user.Err(); err != nil {
		return nil, l.cueErrors(err)
	}
	var sites []ImageSite
	pipelines, err := l.user.LookupPath(cue.ParsePath("pipelines")).Fields()
	if err != nil {
		return nil, nil // no pipelines: no images
	}
	for pipelines.Next() {
		steps, err := pipelines.Value().LookupPath(cue.ParsePath("steps")).Fields()
		if err != nil {
			continue
		}
		// The pipeline's image, for the steps that name none.
		def := pipelines.Value().LookupPath(cue.MakePath(cue.Str("image")))
		for steps.Next() {
			im := steps.Value().LookupPath(cue.MakePath(cue.Str("image")))
			if !im.Exists() {
				im = def
			}
			ref, err := im.String()
			if !im.Exists() || err != nil {
				continue
			}
			for _, v := range conjuncts(im) {
				s := l.site(v)
				s.Pipeline, s.Step, s.Ref = pipelines.Selector().Unquoted(), steps.Selector().Unquoted(), ref
				sites = append(sites, s)
			}
		}
	}
	sort.SliceStable(sites, func(i, j int) bool {
		if sites[i].Pipeline != sites[j].Pipeline {
			return sites[i].Pipeline < sites[j].Pipeline
		}
		return sites[i].Step < sites[j].Step
	})
	return sites, nil
}

// conjuncts are the concrete values v is the unification of: itself, or
// each concrete operand of an &. A type (string) beside a literal says
// nothing about where the image is written.
func conjuncts(v cue.Value) []cue.Value {
	op, args := v.Expr()
	if op != cue.AndOp {
		return []cue.Value{v}
	}
	var out []cue.Value
	for _, a := range args {
		if a.IsConcrete() {
			out = append(out, conjuncts(a)...)
		}
	}
	return out
}

// site says where v is written and whether it is a literal in one of the
// package's own files.
func (l *loader) site(v cue.Value) ImageSite {
	s := ImageSite{Offset: -1, End: -1, Pos: l.relPos(v.Pos())}
	var expr ast.Expr
	switch n := v.Source().(type) {
	case *ast.Field:
		expr = n.Value
	case ast.Expr:
		expr = n
	}
	lit, ok := expr.(*ast.BasicLit)
	if expr != nil {
		s.Pos = l.relPos(expr.Pos())
	}
	switch {
	case expr == nil:
		s.Why = "not written as a field's value"
	case !ok:
		s.Why = "not a string literal: " + describe(expr)
	case s.Pos.File == "" || filepath.IsAbs(s.Pos.File) || filepath.Dir(s.Pos.File) != ".":
		s.Why = "in a file outside the package's folder"
	default:
		uq, err := strconv.Unquote(lit.Value)
		if err != nil || strconv.Quote(uq) != lit.Value {
			// A raw (#"…"#), multi-line or escaped string: rewriting it
			// would change how it is written, not only what it holds.
			s.Why = "not a plain double-quoted string"
			break
		}
		off := lit.Pos().Offset()
		b, err := os.ReadFile(filepath.Join(l.root, s.Pos.File))
		if err != nil || off+len(lit.Value) > len(b) || string(b[off:off+len(lit.Value)]) != lit.Value {
			s.Why = "its file changed while it was read"
			break
		}
		s.Offset, s.End = off, off+len(lit.Value)
	}
	return s
}

// describe names what kind of expression e is, for a site zen cannot
// rewrite.
func describe(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return "a reference to " + e.Name
	case *ast.SelectorExpr, *ast.IndexExpr:
		return "a reference"
	case *ast.Interpolation:
		return "an interpolation"
	}
	return "an expression"
}
