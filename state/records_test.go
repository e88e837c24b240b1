package state

import (
	"errors"
	"strings"
	"testing"
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
		{ModelVersionPath("fraud", "1.0.0"), `{"version":1,"digest":"` + good + `","output_digest":"x"}`,
			func(r Records) error { _, _, err := r.ModelVersion("fraud", "1.0.0"); return err },
			`output_digest: "x" is not a sha256 digest`},
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
