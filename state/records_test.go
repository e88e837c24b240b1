package state

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestRecordDigestsChecked reads records whose digests were edited by hand:
// each is a CorruptError naming the record and the field, since zen makes
// paths and pulls from those digests.
func TestRecordDigestsChecked(t *testing.T) {
	good := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		path string
		body string
		read func(Records) error
		want string
	}{
		{PipelinePath("demo"), `{"version":1,"steps":{"a":{"outputs":{"o":{"digest":"sha256:../../../x"}}}}}`,
			func(r Records) error { _, _, err := r.Pipeline("demo"); return err },
			`steps.a.outputs.o.digest: "sha256:../../../x" is not a sha256 digest`},
		{PipelinePath("demo"), `{"version":1,"steps":{"a":{"log":{"digest":"` + strings.ToUpper(good) + `"}}}}`,
			func(r Records) error { _, _, err := r.Pipeline("demo"); return err },
			`steps.a.log.digest: "SHA256:ABAB`},
		{RunPath("20261123-1"), `{"version":1,"steps":{"a":{"outputs":{"o":{"digest":"sha512:00"}}}}}`,
			func(r Records) error { _, _, err := r.Run("20261123-1"); return err },
			`steps.a.outputs.o.digest: "sha512:00" is not a sha256 digest`},
		{CachePath("3fa2"), `{"version":1,"outputs":{"o":{"digest":""}}}`,
			func(r Records) error { _, _, err := r.Cache("3fa2"); return err },
			`outputs.o.digest: "" is not a sha256 digest`},
		{StagesPath("fraud"), `{"version":1,"stages":{"production":{"digest":"sha256:/etc/passwd"}}}`,
			func(r Records) error { _, _, err := r.Stages("fraud"); return err },
			`stages.production.digest: "sha256:/etc/passwd" is not a sha256 digest`},
		{StagesPath("fraud"), `{"version":1,"stages":{"production":{"digest":"` + good + `"},"canary":null}}`,
			func(r Records) error { _, _, err := r.Stages("fraud"); return err },
			`stages.canary: null`},
		{StagesPath("fraud"), `{"version":1,"stages":{},"history":{"production":[{"digest":"` + good + `"},{"digest":"sha256:../x"}]}}`,
			func(r Records) error { _, _, err := r.Stages("fraud"); return err },
			`history.production[1].digest: "sha256:../x" is not a sha256 digest`},
		{StagesPath("fraud"), `{"version":1,"stages":{},"history":{"production":[null]}}`,
			func(r Records) error { _, _, err := r.Stages("fraud"); return err },
			`history.production[0]: null`},
		{StagesPath("fraud"), `{"version":1,"stages":{"production":{"digest":"` + good + `","rollback":{"digest":"x"}}}}`,
			func(r Records) error { _, _, err := r.Stages("fraud"); return err },
			`stages.production.rollback.digest: "x" is not a sha256 digest`},
		{ModelVersionPath("fraud", "1.0.0"), `{"version":1,"digest":"` + good + `","output_digest":"x"}`,
			func(r Records) error { _, _, err := r.ModelVersion("fraud", "1.0.0"); return err },
			`output_digest: "x" is not a sha256 digest`},
		{ModelVersionPath("fraud", "1.0.0"), `{"version":1,"digest":"` + good + `","output_digest":"` + good + `","run_dirty_digest":"sha256:x"}`,
			func(r Records) error { _, _, err := r.ModelVersion("fraud", "1.0.0"); return err },
			`run_dirty_digest: "sha256:x" is not a sha256 digest`},
		{SubmissionPath("20261123-1"), `{"version":1,"source":"sha256:.."}`,
			func(r Records) error { _, err := r.Submissions(); return err },
			`source: "sha256:.." is not a sha256 digest`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			s := gitTestOpen(t, gitTestRepo(t))
			gitTestCommit(t, s, "", map[string]string{tt.path: tt.body})
			err := tt.read(Records{Snapshot: gitTestHead(t, s), Ref: DefaultRef})
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != tt.path || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("read = %v, want a corrupt %s with %q", err, tt.path, tt.want)
			}
		})
	}

	// Records as zen writes them read as before: no digest, or a good one.
	s := gitTestOpen(t, gitTestRepo(t))
	gitTestCommit(t, s, "", map[string]string{
		PipelinePath("demo"): `{"version":1,"steps":{"a":{"status":"failed"},"b":{"outputs":{"o":{"digest":"` + good + `"}},"log":{"digest":"` + good + `"}}}}`,
		StagesPath("fraud"):  `{"version":1,"stages":{"production":{"digest":"` + good + `"}}}`,
	})
	r := Records{Snapshot: gitTestHead(t, s), Ref: DefaultRef}
	if _, ok, err := r.Pipeline("demo"); !ok || err != nil {
		t.Errorf("Pipeline = %v, %v", ok, err)
	}
	if _, ok, err := r.Stages("fraud"); !ok || err != nil {
		t.Errorf("Stages = %v, %v", ok, err)
	}
}

// TestCheckLayout refuses a state ref moved to a commit that is not zen's
// state, and takes zen's.
func TestCheckLayout(t *testing.T) {
	s := gitTestOpen(t, gitTestRepo(t))
	if err := (Records{Snapshot: gitTestHead(t, s), Ref: DefaultRef}).CheckLayout(); err != nil {
		t.Errorf("empty state: %v", err)
	}
	c := gitTestCommit(t, s, "", map[string]string{PipelinePath("demo"): `{"version":1}`, RunPath("20261123-1"): `{"version":1}`})
	if err := (Records{Snapshot: gitTestHead(t, s), Ref: DefaultRef}).CheckLayout(); err != nil {
		t.Errorf("zen's state: %v", err)
	}
	gitTestCommit(t, s, c, map[string]string{"zen.cue": "package zen\n"})
	err := (Records{Snapshot: gitTestHead(t, s), Ref: DefaultRef}).CheckLayout()
	if err == nil || !strings.Contains(err.Error(), "is not zen's state: it has the file zen.cue at its top") {
		t.Errorf("a source tree: %v", err)
	}
}

// TestStagesHeld moves a stage 1.0.0 → 1.1.0 → 1.0.0 as apply does: each
// version it left is in its history, found by Held with its digest, and
// a version it never held, or the same name with another digest, is not.
func TestStagesHeld(t *testing.T) {
	a, b := "sha256:"+strings.Repeat("aa", 32), "sha256:"+strings.Repeat("bb", 32)
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	gate := &GateResult{Expression: "score >= 0.5", Results: []string{"score >= 0.5: 0.8 ✓"}, Passed: true}
	s := &Stages{Stages: map[string]*Stage{}}
	if s.Held("production", "1.0.0", a) != nil {
		t.Fatal("an empty record held 1.0.0")
	}
	s.Leave("production", t0) // nothing held: nothing to leave
	s.Stages["production"] = &Stage{ModelVersion: "1.0.0", Digest: a, SourceCommit: "c1", Updated: t0, Gate: gate}
	s.Leave("production", t0.Add(time.Hour))
	s.Stages["production"] = &Stage{ModelVersion: "1.1.0", Digest: b, SourceCommit: "c2", Updated: t0.Add(time.Hour)}
	got := s.Held("production", "1.0.0", a)
	want := &Tenure{ModelVersion: "1.0.0", Digest: a, SourceCommit: "c1", From: t0, To: t0.Add(time.Hour), Gate: gate}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Held = %+v, want %+v", got, want)
	}
	if s.Held("production", "1.0.0", b) != nil || s.Held("staging", "1.0.0", a) != nil || s.Held("production", "1.1.0", b) != nil {
		t.Error("Held found a tenure that was not")
	}
	// Back to 1.0.0 by rollback: 1.1.0's tenure is kept, and a later
	// move away from 1.0.0 records that this tenure began with a rollback.
	s.Leave("production", t0.Add(2*time.Hour))
	s.Stages["production"] = &Stage{ModelVersion: "1.0.0", Digest: a, Updated: t0.Add(2 * time.Hour), Gate: gate, Rollback: got}
	s.Leave("production", t0.Add(3*time.Hour))
	h := s.History["production"]
	if len(h) != 3 || h[1].ModelVersion != "1.1.0" || !h[2].Rollback || h[2].Gate != gate {
		t.Errorf("history = %+v", h)
	}
	if got := s.Held("production", "1.0.0", a); got != h[2] {
		t.Errorf("Held = %+v, want the latest tenure %+v", got, h[2])
	}
}
