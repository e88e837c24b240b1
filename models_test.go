package zen

import (
	"slices"
	"testing"
)

// Models lists versions with their stages; a reference names a version
// by number, stage or (bare) as the newest.
func TestModels(t *testing.T) {
	_, p := appliedRepo(t)
	rows, err := p.Models()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].ModelVersion.ModelVersion != "1.0.0" || !slices.Equal(rows[0].Stages, []string{"production"}) || rows[0].SignedBy == "" {
		t.Fatalf("models: %+v", rows)
	}
	for _, ref := range []string{"scorer", "scorer:1.0.0", "scorer@production"} {
		mv, err := p.ModelVersion(ParseModelRef(ref))
		if err != nil || mv.ModelVersion != "1.0.0" {
			t.Errorf("%s: %v, %v", ref, mv, err)
			continue
		}
		if got := p.VersionStages(mv); !slices.Equal(got, []string{"production"}) {
			t.Errorf("%s: stages %v", ref, got)
		}
		run, err := p.RecordedRun(mv.RunID)
		if err != nil || run == nil {
			t.Fatalf("run %s: %v, %v", mv.RunID, run, err)
		}
		if commit, dirty := RunSource(mv, run); commit != run.SourceCommit || dirty != "" {
			t.Errorf("run source %q %q, want %s", commit, dirty, run.SourceCommit)
		}
	}
	for ref, want := range map[string]string{
		"scorer@staging": "model scorer has no version in stage staging",
		"scorer:9":       "model scorer has no recorded version 9",
		"other":          "model other has no recorded version",
	} {
		if _, err := p.ModelVersion(ParseModelRef(ref)); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %s", ref, err, want)
		}
	}
	for _, s := range []string{"m", "m:1", "m@prod"} {
		if got := ParseModelRef(s).String(); got != s {
			t.Errorf("ParseModelRef(%q).String() = %q", s, got)
		}
	}
}
