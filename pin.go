package zen

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/schema"
)

// PinOptions say what zen pin does.
type PinOptions struct {
	// Check lists the tags not pinned, resolving nothing and writing
	// nothing: for CI.
	Check bool
}

// PinnedImage is one string literal zen pin rewrote (or, with Check,
// would rewrite): a tag, to the same tag with its digest.
type PinnedImage struct {
	// Pos is where the literal is written.
	Pos schema.Pos `json:"pos"`
	// Steps are the pipeline.step names whose image it is.
	Steps []string `json:"steps"`
	// Declared is the literal's reference before; Pinned after
	// (Declared@sha256:…), "" with Check.
	Declared string `json:"declared"`
	Pinned   string `json:"pinned,omitempty"`
}

// UnpinnedImage is a step's tag written where zen pin cannot rewrite it: a
// reference to another field, an interpolation, a file outside the
// package's folder.
type UnpinnedImage struct {
	Pos   schema.Pos `json:"pos"`
	Steps []string   `json:"steps"`
	Ref   string     `json:"ref"`
	Why   string     `json:"why"`
}

// PinResult is what zen pin did.
type PinResult struct {
	Pinned    []PinnedImage   `json:"pinned"`
	NotPinned []UnpinnedImage `json:"not_pinned"`
	// Already counts the literals already pinned by digest.
	Already int `json:"already"`
}

// Unpinned reports whether a tag is left unpinned: with Check, any tag;
// else one zen could not rewrite.
func (r *PinResult) Unpinned(check bool) bool {
	return len(r.NotPinned) > 0 || check && len(r.Pinned) > 0
}

// ImagePinned reports whether an image reference names its digest.
func ImagePinned(ref string) bool {
	return strings.Contains(ref, "@sha256:")
}

// Pin rewrites every step's image tag written as a string literal in the
// repository's CUE files to the same tag with the digest it resolves to
// now ("reg/base:1" → "reg/base:1@sha256:…"), so that a pull request shows
// an image bump as a one-line diff. Only the literal's bytes change: the
// rest of each file, comments and layout included, is kept byte for byte.
// A literal already pinned is left as it is. Every tag is resolved before
// any file is written: an image the registry does not have writes
// nothing.
func (p *Project) Pin(ctx context.Context, opts PinOptions) (*PinResult, error) {
	if _, err := p.Config(); err != nil {
		return nil, err
	}
	sites, err := schema.ImageSites(p.ws.Root)
	if err != nil {
		return nil, err
	}
	res := &PinResult{Pinned: []PinnedImage{}, NotPinned: []UnpinnedImage{}}
	type key struct {
		pos schema.Pos
		ref string
	}
	literals := map[key]int{} // → index in res.Pinned
	unpinned := map[key]int{}
	already := map[schema.Pos]bool{}
	var edits []pinEdit
	for _, s := range sites {
		step := s.Pipeline + "." + s.Step
		k := key{s.Pos, s.Ref}
		switch {
		case ImagePinned(s.Ref):
			if s.Why == "" && !already[s.Pos] {
				already[s.Pos] = true
				res.Already++
			}
		case s.Why != "":
			if i, ok := unpinned[k]; ok {
				res.NotPinned[i].Steps = append(res.NotPinned[i].Steps, step)
				continue
			}
			unpinned[k] = len(res.NotPinned)
			res.NotPinned = append(res.NotPinned, UnpinnedImage{Pos: s.Pos, Steps: []string{step}, Ref: s.Ref, Why: s.Why})
		default:
			if i, ok := literals[k]; ok {
				res.Pinned[i].Steps = append(res.Pinned[i].Steps, step)
				continue
			}
			literals[k] = len(res.Pinned)
			res.Pinned = append(res.Pinned, PinnedImage{Pos: s.Pos, Steps: []string{step}, Declared: s.Ref})
			edits = append(edits, pinEdit{file: s.Pos.File, offset: s.Offset, end: s.End, old: strconv.Quote(s.Ref)})
		}
	}
	if opts.Check || len(edits) == 0 {
		return res, nil
	}
	digests := map[string]string{}
	for i := range res.Pinned {
		pi := &res.Pinned[i]
		d, ok := digests[pi.Declared]
		if !ok {
			resolved, err := registry.ResolveImage(ctx, pi.Declared)
			if err != nil {
				return nil, fmt.Errorf("%s: image %s: %w", pi.Pos, pi.Declared, err)
			}
			_, d, _ = strings.Cut(resolved, "@")
			digests[pi.Declared] = d
		}
		pi.Pinned = pi.Declared + "@" + d
		edits[i].new = strconv.Quote(pi.Pinned)
	}
	if err := writeEdits(p.ws.Root, edits); err != nil {
		return nil, err
	}
	return res, nil
}

// pinEdit replaces bytes [offset, end) of file, which must read old, by
// new.
type pinEdit struct {
	file        string
	offset, end int
	old, new    string
}

// writeEdits splices every edit into its file, and writes each file whole
// (a temporary file renamed over it) once all of them are spliced: a file
// that changed since it was read is an error that writes nothing.
func writeEdits(root string, edits []pinEdit) error {
	byFile := map[string][]pinEdit{}
	for _, e := range edits {
		byFile[e.file] = append(byFile[e.file], e)
	}
	out := map[string][]byte{}
	for file, es := range byFile {
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			return err
		}
		if out[file], err = splice(b, es); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	for _, file := range slices.Sorted(maps.Keys(out)) {
		if err := replaceFile(filepath.Join(root, file), out[file]); err != nil {
			return err
		}
	}
	return nil
}

// splice returns b with each edit's bytes replaced, from the last to the
// first so that offsets stay true.
func splice(b []byte, edits []pinEdit) ([]byte, error) {
	es := slices.Clone(edits)
	slices.SortFunc(es, func(a, b pinEdit) int { return b.offset - a.offset })
	out := slices.Clone(b)
	prev := len(b) + 1
	for _, e := range es {
		if e.offset < 0 || e.end > len(out) || e.end > prev || !bytes.Equal(out[e.offset:e.end], []byte(e.old)) {
			return nil, fmt.Errorf("changed while zen pin read it: run zen pin again")
		}
		out = slices.Concat(out[:e.offset], []byte(e.new), out[e.end:])
		prev = e.offset
	}
	return out, nil
}

// replaceFile writes b over path, keeping its mode, through a temporary
// file in the same folder: a reader sees the old file or the new, never
// half of one.
func replaceFile(path string, b []byte) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".zen-pin-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
