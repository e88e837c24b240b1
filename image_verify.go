package zen

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zen-dev/zen/registry/verify"
	"github.com/zen-dev/zen/schema"
)

// imageCheck returns what checks a stack's pinned images: that each is
// signed by the stack's images.verify.key, through zen's one verifier;
// nil when the stack does not ask. The key is read now, so that a
// missing key fails the plan whether or not a step has an image.
func (p *Project) imageCheck(st *schema.Stack) (func(context.Context, string) error, error) {
	if st.ImageKey == "" {
		return nil, nil
	}
	path := st.ImageKey
	if !filepath.IsAbs(path) {
		path = filepath.Join(p.ws.Root, filepath.FromSlash(path))
	}
	key, _, err := LoadPublicKey(path)
	if err != nil {
		return nil, fmt.Errorf("stack %s: images: verify: key %s: %w", st.Name, st.ImageKey, err)
	}
	v := &verify.Verifier{Key: key}
	return func(ctx context.Context, pinned string) error {
		if err := v.Image(ctx, pinned); err != nil {
			return fmt.Errorf("stack %s requires images signed by %s (images: verify: key): %w", st.Name, st.ImageKey, err)
		}
		return nil
	}, nil
}

// requirePinned refuses, on a stack with images: pinned: true, every step
// of the planned pipelines whose image is written as a tag without its
// digest, naming where each is written: what such a stack runs changes
// only through a diff that shows the new digest.
func (p *Project) requirePinned(st *schema.Stack, cfg *schema.Config, pipelines []string) error {
	if !st.ImagesPinned {
		return nil
	}
	var tags []string
	for name, pl := range cfg.Pipelines {
		if len(pipelines) > 0 && !slices.Contains(pipelines, name) {
			continue
		}
		for _, s := range pl.Steps {
			if s.Image != "" && !ImagePinned(s.Image) {
				tags = append(tags, name+"."+s.Name)
			}
		}
	}
	if len(tags) == 0 {
		return nil
	}
	// Where each is written, for the message; the evaluation above
	// already passed, so a failure here leaves the step names alone.
	var lines []string
	sites, _ := schema.ImageSites(p.ws.Root)
	for _, s := range sites {
		if !slices.Contains(tags, s.Pipeline+"."+s.Step) || ImagePinned(s.Ref) {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s: pipelines.%s.steps.%s.image: %q is a tag without a digest", s.Pos, s.Pipeline, s.Step, s.Ref))
	}
	if len(lines) == 0 {
		slices.Sort(tags)
		for _, t := range tags {
			lines = append(lines, fmt.Sprintf("step %s: image is a tag without a digest", t))
		}
	}
	slices.Sort(lines)
	lines = slices.Compact(lines)
	return fmt.Errorf("stack %s requires images pinned by digest (images: pinned: true); zen pin writes the digests:\n  %s", st.Name, strings.Join(lines, "\n  "))
}
