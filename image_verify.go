package zen

import (
	"context"
	"fmt"
	"path/filepath"

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
