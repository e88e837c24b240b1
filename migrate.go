package zen

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/zen-dev/zen/internal/failpoint"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/schema"
)

// What a migration copies. A run's output or log is an artifact; a model
// version is copied with its version tag; a stage is a tag moved; a
// signature or attestation is cosign's manifest of one of those.
const (
	MigrateArtifact    = "artifact"
	MigrateModel       = "model"
	MigrateStage       = "stage"
	MigrateSignature   = "signature"
	MigrateAttestation = "attestation"
)

// MigrateItem is one manifest a migration copies, with the tag pointed at
// it, and what the destination lacks of it.
type MigrateItem struct {
	Kind string `json:"kind"`
	// Model is the model's name for a model version, a stage, or their
	// signatures; "" for the artifacts' repository.
	Model string `json:"model,omitempty"`
	// Name says what the record calls it: "train.model in run ID", a
	// model version, a stage; for a signature or attestation, the name
	// of what it signs.
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Tag    string `json:"tag,omitempty"`
	// Transfer is what the destination lacked when planned.
	Transfer registry.Transfer `json:"transfer"`
	// Kept is true for a signature or attestation manifest the
	// destination holds a different one of: the destination's is kept,
	// not replaced.
	Kept bool `json:"kept,omitempty"`
}

// Needed reports whether the item has anything to copy.
func (it *MigrateItem) Needed() bool { return !it.Kept && !it.Transfer.Empty() }

// Migration is the plan of copying, from one stack's artifact store to
// another's, everything the state ref references in the first: the
// outputs and logs of the runs recorded on it, the model versions pushed
// to it with their version tags, the stages that hold those versions, and
// the signatures and attestations of all of them.
type Migration struct {
	From      string `json:"from"`
	To        string `json:"to"`
	FromStore string `json:"from_store"`
	ToStore   string `json:"to_store"`
	// Items are in the order they are copied: each artifact and model
	// version before its signature and attestation, stages last.
	Items []*MigrateItem `json:"items"`
	// Missing lists what the records reference on From that its store
	// does not hold: nothing to copy it from.
	Missing []string `json:"missing,omitempty"`
	// Warnings say what will not verify on To after the copy.
	Warnings []string `json:"warnings,omitempty"`
	// Applied is true once the items were copied.
	Applied bool `json:"applied"`
}

// MigrateTotals sums a migration's items.
type MigrateTotals struct {
	// Artifacts, Models, Stages, Signatures and Attestations count the
	// items of each kind the records reference.
	Artifacts, Models, Stages, Signatures, Attestations int
	// Needed counts the items with something to copy; Kept the
	// signatures and attestations the destination has its own of.
	Needed, Kept int
	// Manifests, Blobs, Bytes and Tags are what the destination lacks.
	Manifests, Blobs int
	Bytes            int64
	Tags             int
}

// Totals sums the items.
func (m *Migration) Totals() MigrateTotals {
	var t MigrateTotals
	blobs := map[string]bool{} // "<model> <digest>": a blob is copied once per repository
	for _, it := range m.Items {
		switch it.Kind {
		case MigrateArtifact:
			t.Artifacts++
		case MigrateModel:
			t.Models++
		case MigrateStage:
			t.Stages++
		case MigrateSignature:
			t.Signatures++
		case MigrateAttestation:
			t.Attestations++
		}
		if it.Kept {
			t.Kept++
			continue
		}
		if !it.Needed() {
			continue
		}
		t.Needed++
		t.Manifests += it.Transfer.Manifests
		for _, b := range it.Transfer.Lacking {
			if k := it.Model + " " + b.Digest; !blobs[k] {
				blobs[k] = true
				t.Blobs++
				t.Bytes += b.Size
			}
		}
		if it.Transfer.Tag {
			t.Tags++
		}
	}
	return t
}

// Migrate plans copying what the state ref references in stack from's
// artifact store to stack to's (see Migration) and, with apply, copies it.
// Manifests and blobs keep their digests, so signatures and attestations
// hold on to, and blobs, manifests and tags to holds already are not
// written again: a migration stopped midway is finished by the next, and
// one run again copies nothing. The records are not changed: they name
// the stack a run or version was made on, and zen verify --stack reads
// another stack's store.
//
// Bad input is an error before anything is written: an unknown stack, the
// same stack twice, a store that cannot be reached, and a model version
// whose version tag in to's store points at another digest than the
// record's.
func (p *Project) Migrate(ctx context.Context, from, to string, apply bool) (*Migration, error) {
	cfg, err := p.Config()
	if err != nil {
		return nil, err
	}
	all := Stacks(cfg)
	names := strings.Join(slices.Sorted(maps.Keys(all)), ", ")
	for _, c := range []struct{ flag, name string }{{"--from", from}, {"--to", to}} {
		if c.name == "" {
			return nil, fmt.Errorf("migrate: %s names no stack; stacks: %s", c.flag, names)
		}
		if _, ok := all[c.name]; !ok {
			return nil, fmt.Errorf("migrate: unknown stack %q (%s); stacks: %s", c.name, c.flag, names)
		}
	}
	if from == to {
		return nil, fmt.Errorf("migrate: --from and --to both name stack %s: name two stacks", from)
	}
	src, err := p.openChecked(ctx, all[from])
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := p.openChecked(ctx, all[to])
	if err != nil {
		return nil, err
	}
	// The store's name as given may differ in spelling ("reg/ml/" and
	// "reg/ml"); its artifacts repository's name is the canonical one.
	if src.String() == dst.String() || src.ArtifactRepository().Reference() == dst.ArtifactRepository().Reference() {
		dst.Close()
		return nil, fmt.Errorf("migrate: stacks %s and %s have the same artifact store, %s: nothing to copy", from, to, src)
	}
	m := &Migration{From: from, To: to, FromStore: src.String(), ToStore: dst.String()}
	err = p.planMigration(ctx, m, src, dst)
	if err == nil && apply {
		err = copyItems(ctx, m, src, dst)
	}
	// Close writes a layout's tags: what was copied stays copied.
	if cerr := dst.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// openChecked opens a stack's store and makes sure it can be reached.
func (p *Project) openChecked(ctx context.Context, st *schema.Stack) (registry.ModelStore, error) {
	s, err := p.OpenStore(st)
	if err != nil {
		return nil, err
	}
	ms, ok := s.(registry.ModelStore)
	if !ok {
		s.Close()
		return nil, fmt.Errorf("stack %s: artifact store %s holds no models", st.Name, s)
	}
	if err := s.Check(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("stack %s: %w", st.Name, err)
	}
	return ms, nil
}

// planMigration fills m's items from the records, and what dst lacks of
// each.
func (p *Project) planMigration(ctx context.Context, m *Migration, src, dst registry.ModelStore) error {
	recs, err := p.Records()
	if err != nil {
		return err
	}
	signers := map[string]int{} // key id → runs and versions it signed
	// The runs' artifacts, each digest once, in the runs' order.
	ids, err := recs.RunIDs()
	if err != nil {
		return err
	}
	slices.Sort(ids)
	seen := map[string]bool{}
	for _, id := range ids {
		run, ok, err := recs.Run(id)
		if err != nil {
			return err
		}
		if !ok || run.Stack != m.From {
			continue
		}
		signers[run.SignedBy]++
		order := run.Order
		if len(order) == 0 {
			order = slices.Sorted(maps.Keys(run.Steps))
		}
		for _, step := range order {
			res := run.Steps[step]
			if res == nil {
				continue
			}
			arts := map[string]string{}
			for name, a := range res.Outputs {
				arts[step+"."+name] = a.Digest
			}
			if res.Log != nil {
				arts[step+" log"] = res.Log.Digest
			}
			for _, name := range slices.Sorted(maps.Keys(arts)) {
				d := arts[name]
				if d == "" || seen[d] {
					continue
				}
				seen[d] = true
				if err := m.addManifest(ctx, src, dst, MigrateArtifact, "", name+" in run "+id, d); err != nil {
					return err
				}
			}
		}
	}
	// The model versions pushed to From, and the stages holding them.
	models, err := recs.Snapshot.List("models")
	if err != nil {
		return err
	}
	for _, model := range models {
		versions, err := recs.ModelVersions(model)
		if err != nil {
			return err
		}
		here := map[string]string{} // digest → version
		for _, v := range versions {
			mv, ok, err := recs.ModelVersion(model, v)
			if err != nil {
				return err
			}
			if !ok || !(mv.Stack == m.From || mv.Stack == "" && mv.Repository == src.ModelRepository(model).Reference()) {
				continue
			}
			signers[mv.SignedBy]++
			here[mv.Digest] = mv.ModelVersion
			if err := m.addManifest(ctx, src, dst, MigrateModel, model, mv.ModelVersion, mv.Digest); err != nil {
				return err
			}
		}
		st, ok, err := recs.Stages(model)
		if err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		for _, stage := range slices.Sorted(maps.Keys(st.Stages)) {
			s := st.Stages[stage]
			if s == nil {
				continue
			}
			if _, ok := here[s.Digest]; !ok {
				continue
			}
			it := &MigrateItem{Kind: MigrateStage, Model: model, Name: stage + " → " + s.ModelVersion, Digest: s.Digest, Tag: stage}
			t, err := registry.Copy(ctx, src, dst, model, s.Digest, stage, true)
			if err != nil {
				return err
			}
			// The version's item copies the manifest: a stage is a tag.
			it.Transfer = registry.Transfer{Tag: t.Tag, Was: t.Was}
			m.Items = append(m.Items, it)
		}
	}
	m.Warnings = p.keyWarnings(m, signers)
	return nil
}

// addManifest adds an artifact or model version, and its signature and
// attestation, unless src lacks it.
func (m *Migration) addManifest(ctx context.Context, src, dst registry.ModelStore, kind, model, name, digest string) error {
	repo := src.ArtifactRepository()
	tag := ""
	if model != "" {
		repo = src.ModelRepository(model)
		tag = name // the version tag
	} else if i := strings.IndexByte(digest, ':'); i >= 0 {
		tag = digest[i+1:] // as Push tags an artifact
	}
	if _, err := repo.Manifest(ctx, digest); errors.Is(err, registry.ErrNotFound) {
		m.Missing = append(m.Missing, fmt.Sprintf("%s %s (%s)", kind, name, digest))
		return nil
	} else if err != nil {
		return err
	}
	it := &MigrateItem{Kind: kind, Model: model, Name: name, Digest: digest, Tag: tag}
	var err error
	if it.Transfer, err = registry.Copy(ctx, src, dst, model, digest, tag, true); err != nil {
		return err
	}
	if kind == MigrateModel && it.Transfer.Was != "" {
		return fmt.Errorf("migrate: model %s version %s: %s holds %s:%s at %s, the record says %s: a version is never moved; remove the tag from %s, or migrate to another store",
			model, name, dst, model, name, it.Transfer.Was, digest, dst)
	}
	m.Items = append(m.Items, it)
	hex := strings.Replace(digest, ":", "-", 1)
	for _, c := range []struct{ kind, suffix string }{{MigrateSignature, ".sig"}, {MigrateAttestation, ".att"}} {
		raw, err := repo.Manifest(ctx, hex+c.suffix)
		if errors.Is(err, registry.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		sum := sha256.Sum256(raw)
		d := "sha256:" + hexString(sum[:])
		sig := &MigrateItem{Kind: c.kind, Model: model, Name: name, Digest: d, Tag: hex + c.suffix}
		if sig.Transfer, err = registry.Copy(ctx, src, dst, model, d, sig.Tag, true); err != nil {
			return err
		}
		// The destination signed the same bytes itself: its manifest
		// stays, as zen's own signing extends it and never replaces it.
		sig.Kept = sig.Transfer.Was != ""
		m.Items = append(m.Items, sig)
	}
	return nil
}

func hexString(b []byte) string { return hex.EncodeToString(b) }

// keyWarnings says which migrated records are signed by a key the
// destination stack does not verify with: its plan will not reuse them,
// and zen verify there fails, until it does.
func (p *Project) keyWarnings(m *Migration, signers map[string]int) []string {
	st, err := p.SelectStack(m.To)
	if err != nil {
		return nil
	}
	_, id, _, err := p.PublicKey(st)
	if err != nil || id == "" {
		return nil
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(signers)) {
		if k != "" && k != id {
			out = append(out, fmt.Sprintf("%d runs and model versions are signed by key %s; stack %s verifies with key %s: its plans will not reuse them, and zen verify there fails, unless its signer's public key is that key", signers[k], k, m.To, id))
		}
	}
	return out
}

// copyItems copies the items that need it, in order.
func copyItems(ctx context.Context, m *Migration, src, dst registry.ModelStore) error {
	for _, it := range m.Items {
		if !it.Needed() {
			continue
		}
		got, err := registry.Copy(ctx, src, dst, it.Model, it.Digest, it.Tag, false)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		it.Transfer = got
		failpoint.Hit(failpoint.MigrateCopied)
	}
	m.Applied = true
	return nil
}
