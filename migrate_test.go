package zen

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Migrate plans every artifact and version before its signature and
// attestation, and the stages last; planning writes nothing, applying
// copies it all, and a second migration has nothing to copy. Two stacks
// on one store are refused.
func TestMigratePlan(t *testing.T) {
	dir, _ := appliedRepo(t)
	cue := modelsCUE + `
stacks: {
	local: {orchestrator: flavor: "local", artifact_store: {flavor: "oci-layout", path: ".zen/store"}}
	copy: {orchestrator: flavor: "local", artifact_store: {flavor: "oci-layout", path: "copy-store"}}
	same: {orchestrator: flavor: "local", artifact_store: {flavor: "oci-layout", path: "./.zen/store/"}}
}
default_stack: "local"
`
	if err := os.WriteFile(filepath.Join(dir, "zen.cue"), []byte(cue), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	m, err := p.Migrate(ctx, "local", "copy", false)
	if err != nil {
		t.Fatal(err)
	}
	if m.Applied || len(m.Missing) != 0 || len(m.Warnings) != 0 {
		t.Errorf("plan: applied %v, missing %v, warnings %v", m.Applied, m.Missing, m.Warnings)
	}
	seen := map[string]bool{} // "<model> <name>" of the artifacts and versions listed so far
	stages := false
	for _, it := range m.Items {
		if !it.Needed() {
			t.Errorf("%s %s: the empty store holds it already", it.Kind, it.Name)
		}
		switch it.Kind {
		case MigrateArtifact, MigrateModel:
			if stages {
				t.Errorf("%s %s after a stage", it.Kind, it.Name)
			}
			seen[it.Model+" "+it.Name] = true
		case MigrateSignature, MigrateAttestation:
			if !seen[it.Model+" "+it.Name] {
				t.Errorf("%s of %s before what it signs", it.Kind, it.Name)
			}
		case MigrateStage:
			stages = true
			if it.Model != "scorer" || it.Tag != "production" || it.Name != "production → 1.0.0" {
				t.Errorf("stage: %+v", it)
			}
		}
	}
	tot := m.Totals()
	if tot.Models != 1 || tot.Stages != 1 || tot.Artifacts < 3 || tot.Signatures != tot.Artifacts+tot.Models || tot.Attestations != tot.Signatures {
		t.Errorf("totals: %+v", tot)
	}
	if tot.Blobs == 0 || tot.Bytes == 0 || tot.Manifests != len(m.Items)-tot.Stages || tot.Tags == 0 {
		t.Errorf("to copy: %+v", tot)
	}
	// Planning wrote no blob.
	if blobs, _ := os.ReadDir(filepath.Join(dir, "copy-store", "blobs", "sha256")); len(blobs) != 0 {
		t.Errorf("planning wrote %d blobs", len(blobs))
	}

	if m, err = p.Migrate(ctx, "local", "copy", true); err != nil || !m.Applied {
		t.Fatalf("apply: %v", err)
	}
	if blobs, _ := os.ReadDir(filepath.Join(dir, "copy-store", "blobs", "sha256")); len(blobs) < tot.Blobs {
		t.Errorf("copied %d blobs, want %d", len(blobs), tot.Blobs)
	}
	m, err = p.Migrate(ctx, "local", "copy", false)
	if err != nil {
		t.Fatal(err)
	}
	if again := m.Totals(); again.Needed != 0 || again.Kept != 0 {
		t.Errorf("after the copy: %+v", again)
	}

	if _, err := p.Migrate(ctx, "local", "same", false); err == nil || !strings.Contains(err.Error(), "stacks local and same have the same artifact store") {
		t.Errorf("one store twice: %v", err)
	}
}
