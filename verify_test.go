package zen

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zen-dev/zen/registry/verify"
)

// Verification checks a model version and every artifact of a run
// against the stack's key; another key fails with a typed error.
func TestVerify(t *testing.T) {
	dir, p := appliedRepo(t)
	ctx := context.Background()
	mv, err := p.VerifyModel(ctx, ParseModelRef("scorer@production"), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mv.Version.ModelVersion != "1.0.0" || mv.KeyID == "" || mv.Key != "key "+mv.KeyID {
		t.Errorf("model: %+v", mv)
	}
	rv, err := p.VerifyRun(ctx, "latest", VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range rv.Artifacts {
		got = append(got, c.Step+"."+c.Artifact)
		if !c.OK || c.Run != rv.Run.ID {
			t.Errorf("%s.%s: %+v", c.Step, c.Artifact, c)
		}
	}
	if want := []string{"prep.data", "prep.log", "train.model", "train.log"}; !slices.Equal(got, want) {
		t.Errorf("artifacts %v, want %v", got, want)
	}
	if rv.Err() != nil || rv.Key != mv.Key {
		t.Errorf("run: %v, key %q", rv.Err(), rv.Key)
	}

	// Another key: the model and each artifact are signed, but not by it.
	if _, _, err := GenerateKeys(dir, filepath.Join(dir, "other"), nil); err != nil {
		t.Fatal(err)
	}
	other := VerifyOptions{Key: filepath.Join(dir, "other.pub"), KeyName: "other.pub"}
	_, err = p.VerifyModel(ctx, ParseModelRef("scorer:1.0.0"), other)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Kind != verify.OtherKey || !strings.HasPrefix(err.Error(), "model scorer 1.0.0 (sha256:") {
		t.Errorf("model, another key: %v", err)
	}
	rv, err = p.VerifyRun(ctx, "latest", other)
	if err != nil {
		t.Fatal(err)
	}
	if rv.Key != "other.pub" || rv.Failed() != 4 {
		t.Errorf("run, another key: key %q, %d failed", rv.Key, rv.Failed())
	}
	if err := rv.Err(); !errors.As(err, &ve) || ve.Kind != verify.OtherKey || err.Error() != "run "+rv.Run.ID+": 4 of 4 artifacts do not verify" {
		t.Errorf("run, another key: %v", err)
	}

	// A stack that is not declared.
	if _, err := p.VerifyRun(ctx, "latest", VerifyOptions{Stack: "elsewhere"}); err == nil || !strings.Contains(err.Error(), `unknown stack "elsewhere"`) {
		t.Errorf("an unknown stack: %v", err)
	}
}
