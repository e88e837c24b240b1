package schema

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
)

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
