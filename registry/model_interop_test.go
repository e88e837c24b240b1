package registry

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// TestModelLayerTitles checks that a layer which is one file is titled with
// its path, as oras pull wants, and that a tar layer is not: oras would
// write the tar under the name of a model file.
func TestModelLayerTitles(t *testing.T) {
	ctx := context.Background()
	for i, c := range models {
		t.Run(c.name, func(t *testing.T) {
			s := newLayout(t).(ModelStore)
			d, err := s.PushModel(ctx, makeModel(t, t.TempDir(), i), meta)
			if err != nil {
				t.Fatal(err)
			}
			m, _ := readModel(t, s, "fraud", d.Digest)
			for _, l := range m.Layers {
				raw, _, _ := modelLayerType(l.MediaType)
				title, titled := l.Annotations[titleAnnotation]
				switch {
				case raw && title != l.Annotations[AnnotationFilepath]:
					t.Errorf("raw layer %s: title %q, want its file path %q", l.Digest, title, l.Annotations[AnnotationFilepath])
				case !raw && titled:
					t.Errorf("tar layer %s has the title %q", l.Digest, title)
				}
			}
		})
	}
}

// TestModelLayouts checks that each model's tags are in a layout of its
// own, models/<model>, under their bare names, which go-containerregistry
// opens, and that a store made before such layouts gets them at its next
// write.
func TestModelLayouts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openLayout(t, dir)
	d1, err := s.PushModel(ctx, makeModel(t, t.TempDir(), 0), meta)
	if err != nil {
		t.Fatal(err)
	}
	other := meta
	other.Name = "churn"
	d2, err := s.PushModel(ctx, makeModel(t, t.TempDir(), 2), other)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []struct{ model, tag, digest string }{
		{"fraud", "1.0.0", d1.Digest}, {"fraud", "production", d1.Digest}, {"churn", "1.0.0", d2.Digest},
	} {
		if err := s.Tag(ctx, tag.model, tag.tag, tag.digest); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ModelRepository("fraud").PutManifest(ctx, "sha256-abc.sig", []byte(`{"schemaVersion":2}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T) {
		t.Helper()
		for model, want := range map[string]map[string]string{
			"fraud": {"1.0.0": d1.Digest, "production": d1.Digest, "sha256-abc.sig": ""},
			"churn": {"1.0.0": d2.Digest},
		} {
			p, err := layout.FromPath(filepath.Join(dir, "models", model))
			if err != nil {
				t.Fatal(err)
			}
			ii, err := p.ImageIndex()
			if err != nil {
				t.Fatal(err)
			}
			im, err := ii.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			var tags []string
			for _, d := range im.Manifests {
				tag := d.Annotations[refNameAnnotation]
				tags = append(tags, tag)
				if want[tag] != "" && d.Digest.String() != want[tag] {
					t.Errorf("%s:%s is %s, want %s", model, tag, d.Digest, want[tag])
				}
				// The blobs are the store's, through the symlink.
				if _, err := p.Blob(d.Digest); err != nil {
					t.Errorf("%s:%s: %v", model, tag, err)
				}
			}
			wantTags := slices.Sorted(func(yield func(string) bool) {
				for tag := range want {
					if !yield(tag) {
						return
					}
				}
			})
			if !slices.Equal(tags, wantTags) {
				t.Errorf("%s: tags %v, want %v", model, tags, wantTags)
			}
		}
	}
	check(t)

	// A store written before model layouts: the next write makes them.
	if err := os.RemoveAll(filepath.Join(dir, "models")); err != nil {
		t.Fatal(err)
	}
	s = openLayout(t, dir)
	if err := s.Tag(ctx, "fraud", "production", d1.Digest); err != nil {
		t.Fatal(err)
	}
	check(t)
}

// TestModelMetadata checks that a version's metadata is in its config's
// descriptor, that the same files and metadata give the same digest, and
// that each field changes it.
func TestModelMetadata(t *testing.T) {
	ctx := context.Background()
	full := meta
	full.Authors = []string{"Ada", "Grace"}
	full.Licenses = []string{"Apache-2.0"}
	full.Card = "# fraud\n\nFinds fraud.\n"
	variants := map[string]func(*ModelMeta){
		"description": func(m *ModelMeta) { m.Description = "other" },
		"authors":     func(m *ModelMeta) { m.Authors = []string{"Grace", "Ada"} },
		"licenses":    func(m *ModelMeta) { m.Licenses = nil },
		"card":        func(m *ModelMeta) { m.Card += "\n" },
	}
	for _, st := range modelStores {
		s := st.open(t)
		p := makeModel(t, t.TempDir(), 0)
		d, err := s.PushModel(ctx, p, full)
		if err != nil {
			t.Fatal(err)
		}
		again, err := s.PushModel(ctx, makeModel(t, t.TempDir(), 0), full)
		if err != nil {
			t.Fatal(err)
		}
		if again.Digest != d.Digest {
			t.Errorf("%s: same files and metadata: digests %s and %s", st.name, d.Digest, again.Digest)
		}
		_, cfg := readModel(t, s, "fraud", d.Digest)
		got := cfg.Descriptor
		if got.Description != full.Description || !slices.Equal(got.Authors, full.Authors) ||
			!slices.Equal(got.Licenses, full.Licenses) || got.Card != full.Card || got.CreatedAt != nil {
			b, _ := json.Marshal(got)
			t.Errorf("%s: descriptor %s", st.name, b)
		}
		for name, change := range variants {
			m := full
			change(&m)
			v, err := s.PushModel(ctx, p, m)
			if err != nil {
				t.Fatal(err)
			}
			if v.Digest == d.Digest {
				t.Errorf("%s: another %s gave the same digest", st.name, name)
			}
		}
	}
}
