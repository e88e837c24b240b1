package plan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// Sources gives the digests of what a step reads from the repository and
// the machine.
type Sources interface {
	// File and Dir return the content digest of a repository file or
	// folder (slash-separated path relative to the root).
	File(path string) (string, error)
	Dir(path string) (string, error)
	// Code returns path → digest of every code file of the step: the
	// files its command names and those its code: globs match.
	Code(step *schema.Step) (map[string]string, error)
	// Executable identifies the program a command runs, looked up on PATH
	// ("" for a repository file, which Code covers).
	Executable(name string) (string, error)
}

// Fingerprint gathers what the cache key of step s is made of. upstream
// maps the names of inputs from other steps, and from model stages, to
// their digests; inputs whose digest is not known yet are left out.
func Fingerprint(s *schema.Step, src Sources, upstream map[string]string) (*state.Fingerprint, error) {
	fp := &state.Fingerprint{
		Command:    s.Run,
		Image:      s.Image,
		Env:        map[string]string{},
		Parameters: map[string]json.RawMessage{},
		Inputs:     map[string]string{},
		Outputs:    map[string]string{},
	}
	for name, ev := range s.Env {
		if ev.Secret != "" {
			fp.Env[name] = "secret:" + ev.Secret
		} else {
			fp.Env[name] = ev.Value
		}
	}
	for name, v := range s.Parameters {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", name, err)
		}
		fp.Parameters[name] = b
	}
	for name, o := range s.Outputs {
		fp.Outputs[name] = o.Type
		if o.Model != "" {
			fp.Outputs[name] += " model=" + o.Model
		}
	}
	for _, name := range s.InputNames() {
		in := s.Inputs[name]
		var d string
		var err error
		switch in.Kind {
		case schema.InputStep, schema.InputModel:
			var ok bool
			if d, ok = upstream[name]; !ok {
				continue
			}
		case schema.InputFile, schema.InputDir:
			if in.GitIgnored && !in.Ignored {
				// Its bytes would be stored nowhere: another clone, a
				// Slurm node or lineage could never fetch them.
				return nil, fmt.Errorf("input %s: %s is ignored by git, so no clone holds its bytes: store it with `zen data push %s` and declare the {data: …} input it prints instead (or add ignored: true to the input to use it as it is)", name, in.Path, in.Path)
			}
			if in.Kind == schema.InputDir {
				d, err = src.Dir(in.Path)
			} else {
				d, err = src.File(in.Path)
			}
		case schema.InputData:
			// The digest pins the bytes: planning needs no network.
			d = in.Digest
		}
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", name, err)
		}
		fp.Inputs[name] = d
	}
	code, err := src.Code(s)
	if err != nil {
		return nil, err
	}
	fp.Code = code
	// In an image, the program is the image's: its digest covers it.
	if s.Image == "" {
		if fp.Executable, err = src.Executable(s.Run[0]); err != nil {
			return nil, err
		}
	}
	return fp, nil
}

// checkData makes sure the store holds each {data: NAME@sha256:…} input
// of s, as it must hold a cached step's outputs: a digest that was never
// pushed there fails the plan rather than the apply.
func checkData(ctx context.Context, store Store, s *schema.Step) error {
	for _, name := range s.InputNames() {
		in := s.Inputs[name]
		if in.Kind != schema.InputData {
			continue
		}
		ok, err := store.Has(ctx, in.Digest)
		if err != nil {
			return fmt.Errorf("input %s: %w", name, err)
		}
		if !ok {
			return fmt.Errorf("input %s: data %s is not in the artifact store %s (push it there with zen data push)", name, in.Source(), store)
		}
	}
	return nil
}

// keyPrefix versions the key's encoding: changing it invalidates every cache.
const keyPrefix = "zen-cache-key-v1\n"

// Key is the cache key of a fingerprint: sha256 over its canonical JSON
// (encoding/json sorts map keys).
func Key(fp *state.Fingerprint) string {
	b, err := json.Marshal(fp)
	if err != nil {
		panic(err) // a Fingerprint holds strings and raw JSON only
	}
	h := sha256.New()
	h.Write([]byte(keyPrefix))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// Diff explains how the fingerprint changed from old to new. With partial,
// inputs missing from new (upstream steps that run first) are not reported.
func Diff(old, new *state.Fingerprint, partial bool) []Reason {
	if old == nil {
		return []Reason{{Kind: ReasonNew}}
	}
	var rs []Reason
	if !equalStrings(old.Command, new.Command) {
		rs = append(rs, Reason{Kind: ReasonCommand, Old: strings.Join(old.Command, " "), New: strings.Join(new.Command, " ")})
	}
	if old.Image != new.Image {
		rs = append(rs, Reason{Kind: ReasonImage, Old: old.Image, New: new.Image})
	}
	if old.Executable != new.Executable {
		rs = append(rs, Reason{Kind: ReasonExecutable, Subject: executableName(new.Executable, old.Executable)})
	}
	for _, k := range changedKeys(old.Code, new.Code) {
		rs = append(rs, Reason{Kind: ReasonCode, Subject: k, Old: old.Code[k], New: new.Code[k]})
	}
	for _, k := range unionKeys(old.Parameters, new.Parameters) {
		o, n := old.Parameters[k], new.Parameters[k]
		if string(o) != string(n) && !jsonEqual(o, n) {
			rs = append(rs, paramReasons(schema.QuoteKey(k), o, n)...)
		}
	}
	for _, k := range changedKeys(old.Env, new.Env) {
		rs = append(rs, Reason{Kind: ReasonEnv, Subject: k})
	}
	for _, k := range unionKeys(old.Inputs, new.Inputs) {
		o, okO := old.Inputs[k]
		n, okN := new.Inputs[k]
		if partial && !okN && okO {
			continue
		}
		if o != n {
			rs = append(rs, Reason{Kind: ReasonInput, Subject: k, Old: o, New: n})
		}
	}
	if changed := changedKeys(old.Outputs, new.Outputs); len(changed) > 0 {
		rs = append(rs, Reason{Kind: ReasonOutputs, Subject: strings.Join(changed, ", ")})
	}
	return rs
}

// paramReasons explains how a parameter changed: a struct parameter
// (params.yaml, nested) field by field, named by its path (train.n_est),
// anything else as its old and new JSON.
func paramReasons(subject string, old, new json.RawMessage) []Reason {
	o, okO := decodeObject(old)
	n, okN := decodeObject(new)
	if !okO || !okN {
		return []Reason{{Kind: ReasonParameter, Subject: subject, Old: compact(old), New: compact(new)}}
	}
	var rs []Reason
	for _, k := range unionKeys(o, n) {
		if a, b := o[k], n[k]; !jsonEqual(a, b) {
			rs = append(rs, paramReasons(subject+"."+schema.QuoteKey(k), a, b)...)
		}
	}
	return rs
}

// compact writes a JSON value on one line, as a reason shows it (a
// record read back has its values indented).
func compact(b json.RawMessage) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return buf.String()
}

// decodeObject decodes a JSON object into its fields, as written.
func decodeObject(b json.RawMessage) (map[string]json.RawMessage, bool) {
	if len(bytes.TrimSpace(b)) == 0 || bytes.TrimSpace(b)[0] != '{' {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil, false
	}
	return m, true
}

// executableName picks the path part of "path sha256:..." for messages.
func executableName(a, b string) string {
	if a == "" {
		a = b
	}
	if i := strings.LastIndex(a, " "); i > 0 {
		return a[:i]
	}
	return a
}

func jsonEqual(a, b []byte) bool {
	if a == nil || b == nil {
		return false
	}
	var x, y bytes.Buffer
	if json.Compact(&x, a) != nil || json.Compact(&y, b) != nil {
		return false
	}
	return x.String() == y.String()
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func unionKeys[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range []map[string]V{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

func changedKeys(a, b map[string]string) []string {
	var out []string
	for _, k := range unionKeys(a, b) {
		o, okO := a[k]
		n, okN := b[k]
		if o != n || okO != okN {
			out = append(out, k)
		}
	}
	return out
}
