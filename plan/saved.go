package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/zen-dev/zen/schema"
)

// A saved plan is a JSON document: the plan, the request that made it
// (stack, pipelines, --no-cache, --set), and a digest over both, so that a
// file cut short, edited or written by something else is refused rather
// than applied.
const (
	// SavedFormat is the "format" field of every saved plan.
	SavedFormat = "zen-plan"
	// SavedVersion is the version of the saved plan format this zen
	// writes and reads.
	SavedVersion = 1
)

// Request is what a plan was asked for: applying a saved plan makes it
// again with the same request, and applies it only if it is the same.
type Request struct {
	Stack     string   `json:"stack"`
	Pipelines []string `json:"pipelines,omitempty"`
	NoCache   bool     `json:"no_cache,omitempty"`
	Sets      []string `json:"sets,omitempty"`
}

// check says what is wrong with a request read from a file, or "": the
// stack and pipelines must be names zen could have written, and each --set
// must parse. Applying the plan then names the file, not --stack or --set.
func (r Request) check() string {
	// The stack and pipelines are names, as the schema has them.
	if !schema.ValidName(r.Stack) {
		return fmt.Sprintf("names stack %q", r.Stack)
	}
	for _, p := range r.Pipelines {
		if !schema.ValidName(p) {
			return fmt.Sprintf("names pipeline %q", p)
		}
	}
	for _, s := range r.Sets {
		if _, err := schema.ParseOverride(s); err != nil {
			return fmt.Sprintf("holds --set %q", s)
		}
	}
	return ""
}

// Saved is a saved plan, as read.
type Saved struct {
	Format  string
	Version int
	Zen     string // the zen that wrote it
	Request Request
	Plan    *Plan
	Digest  string // sha256 of the request and the plan, as written
}

// body is what a saved plan's digest covers: the request and the plan in
// JSON.
func savedBody(req Request, p *Plan) ([]byte, error) {
	return json.Marshal(struct {
		Request Request `json:"request"`
		Plan    *Plan   `json:"plan"`
	}{req, p})
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// WriteSaved writes p, made for req by zen version zen, as a saved plan.
func WriteSaved(w io.Writer, zen string, req Request, p *Plan) error {
	body, err := savedBody(req, p)
	if err != nil {
		return err
	}
	// zen is quoted as JSON, not with %q: some of Go's escapes, such as
	// \x7f, are not JSON. A string always marshals.
	zenJSON, _ := json.Marshal(zen)
	// The body is written as it was hashed, between the header fields and
	// the digest, so that reading it needs no canonical form.
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\"format\":%q,\"format_version\":%d,\"zen_version\":%s,\"body\":", SavedFormat, SavedVersion, zenJSON)
	b.Write(body)
	fmt.Fprintf(&b, ",\"digest\":%q}\n", digestOf(body))
	_, err = w.Write(b.Bytes())
	return err
}

// ErrNotSaved is wrapped by ReadSaved's errors for a file that is not a
// saved plan zen can apply: foreign, corrupt, truncated, or of another
// format version.
var ErrNotSaved = errors.New("not a zen plan file")

// ReadSaved reads a saved plan written by WriteSaved. name names the file
// in errors.
func ReadSaved(r io.Reader, name string) (*Saved, error) {
	raw, err := io.ReadAll(io.LimitReader(r, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w: %s", name, ErrNotSaved, fmt.Sprintf(format, args...))
	}
	var head struct {
		Format  string          `json:"format"`
		Version int             `json:"format_version"`
		Zen     string          `json:"zen_version"`
		Body    json.RawMessage `json:"body"`
		Digest  string          `json:"digest"`
	}
	if trimmed := bytes.TrimSpace(raw); json.Valid(trimmed) && !bytes.HasPrefix(trimmed, []byte("{")) {
		return nil, fail("it is JSON, but not the object zen plan -o writes")
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		if len(bytes.TrimSpace(raw)) > 0 && bytes.HasPrefix(bytes.TrimSpace(raw), []byte(`{"format":"`+SavedFormat+`"`)) {
			return nil, fail("cut short or damaged (%v): make it again with zen plan -o", err)
		}
		return nil, fail("it is not JSON from zen plan -o (%v)", err)
	}
	switch {
	case head.Format != SavedFormat:
		return nil, fail("its format is %q, not %q: make one with zen plan -o", head.Format, SavedFormat)
	case head.Version != SavedVersion:
		return nil, fail("format version %d, this zen reads version %d (it was made by zen %s): make it again with this zen", head.Version, SavedVersion, head.Zen)
	case head.Digest != digestOf(head.Body):
		return nil, fail("its content does not match its digest: the file was changed after zen plan wrote it")
	}
	var body struct {
		Request Request `json:"request"`
		Plan    *Plan   `json:"plan"`
	}
	dec := json.NewDecoder(bytes.NewReader(head.Body))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil || body.Plan == nil {
		return nil, fail("its plan does not decode (%v)", err)
	}
	if hasNull(body.Plan) {
		return nil, fail("its plan lists a null pipeline, step or model change")
	}
	if why := body.Request.check(); why != "" {
		return nil, fail("its request %s, which zen plan -o never writes: the file was edited", why)
	}
	return &Saved{Format: head.Format, Version: head.Version, Zen: head.Zen, Request: body.Request, Plan: body.Plan, Digest: head.Digest}, nil
}

// hasNull reports whether p lists a null pipeline, step or model change,
// which zen never writes and Stale cannot compare.
func hasNull(p *Plan) bool {
	if slices.Contains(p.Models, nil) {
		return true
	}
	for _, pl := range p.Pipelines {
		if pl == nil || slices.Contains(pl.Steps, nil) {
			return true
		}
	}
	return false
}

// Stale says why a plan made now against the same request is not the
// saved one, or returns "" when it is: the state ref, the source commit or
// the work tree moved, or the same inputs now give other actions (an
// artifact went missing, a signature stopped verifying).
func (s *Saved) Stale(now *Plan) string {
	old := s.Plan
	switch {
	case old.StateCommit != now.StateCommit:
		return fmt.Sprintf("the state ref moved since the plan was made (%s → %s)", shortOr(old.StateCommit, "none"), shortOr(now.StateCommit, "none"))
	case old.Source.Commit != now.Source.Commit:
		return fmt.Sprintf("the source commit moved since the plan was made (%s → %s)", shortOr(old.Source.Commit, "none"), shortOr(now.Source.Commit, "none"))
	case old.Source.DirtyDigest != now.Source.DirtyDigest:
		var added []string
		for _, p := range now.Source.Changed {
			if !slices.Contains(old.Source.Changed, p) {
				added = append(added, p)
			}
		}
		why := "the work tree's uncommitted changes are not the ones the plan was made from"
		if len(added) > 0 {
			why += " (changed since: " + strings.Join(added, ", ") + ")"
		}
		return why
	case old.Stack != now.Stack:
		return fmt.Sprintf("the plan is for stack %s, not %s", old.Stack, now.Stack)
	}
	if a, b := actions(old), actions(now); a != b {
		return "the same inputs now give another plan: " + firstDiff(a, b)
	}
	return ""
}

// actions describes what a plan does, one line a step or model change.
func actions(p *Plan) string {
	var b strings.Builder
	for _, pl := range p.Pipelines {
		for _, s := range pl.Steps {
			fmt.Fprintf(&b, "step %s.%s %s %s\n", pl.Name, s.Name, s.Action, s.Key)
			if s.Image != nil {
				// A step after one that runs has no key yet: its pinned
				// image is compared on its own, so a moved tag is seen.
				fmt.Fprintf(&b, "step %s.%s image %s\n", pl.Name, s.Name, s.Image.Pinned)
			}
		}
		if pl.Baseline != nil {
			fmt.Fprintf(&b, "baseline %s moves\n", pl.Name)
		}
	}
	for _, c := range p.Models {
		what := "model " + c.Model + " " + c.Version
		if !c.IsVersion() {
			what = "stage " + c.Model + "/" + c.Stage + " → " + c.Version
		}
		fmt.Fprintf(&b, "%s %s refused=%q\n", what, c.Action, c.Refused)
	}
	return b.String()
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("planned %q, now %q", x, y)
		}
	}
	return ""
}

func shortOr(s, none string) string {
	if s == "" {
		return none
	}
	return short(s)
}
