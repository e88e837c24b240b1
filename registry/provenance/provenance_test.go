package provenance

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPredicateRoundTrip(t *testing.T) {
	b := &Build{
		Entry: "train.fit.model", Run: "20261202-101500.000-abcdef", Commit: "0123456789abcdef0123456789abcdef01234567",
		Dirty:      "sha256:" + strings.Repeat("d", 64),
		Parameters: map[string]any{"epochs": 3.0},
		Inputs:     map[string]string{"data": "sha256:" + strings.Repeat("a", 64)},
		Code:       map[string]string{"steps/fit.py": "sha256:" + strings.Repeat("c", 64)},
	}
	raw, err := b.Predicate()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"builder":{"id":"https://zen.dev/builder/v1"}`, `"buildType":"https://zen.dev/pipeline-run/v1"`, `"entryPoint":"train.fit.model"`, `"buildInvocationID":"20261202-101500.000-abcdef"`, `"uri":"zen:input/train.fit/data"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("predicate %s lacks %s", raw, want)
		}
	}
	got, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if why := Mismatch(got, b); why != "" {
		t.Errorf("round trip: %s", why)
	}
	if got.Dirty != b.Dirty || got.Code["steps/fit.py"] != b.Code["steps/fit.py"] {
		t.Errorf("round trip: got %+v", got)
	}
}

// TestParseEarlierAttestations reads the predicate zen wrote before it used
// in-toto-golang's types: builder "zen", buildInvocationId.
func TestParseEarlierAttestations(t *testing.T) {
	raw := json.RawMessage(`{"builder":{"id":"zen"},"buildType":"https://zen.dev/pipeline-run/v1","invocation":{"configSource":{"uri":"git+commit:abc","digest":{"sha1":"abc"},"entryPoint":"p.s.o"}},"metadata":{"buildInvocationId":"r1","reproducible":false},"materials":[{"uri":"zen:input/p.s/in","digest":{"sha256":"01"}}]}`)
	got, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := &Build{Entry: "p.s.o", Run: "r1", Commit: "abc", Inputs: map[string]string{"in": "sha256:01"}}
	if why := Mismatch(got, want); why != "" {
		t.Error(why)
	}
}

func TestParseRefusesOtherPredicates(t *testing.T) {
	for name, raw := range map[string]string{
		"not JSON":        `[`,
		"another builder": `{"builder":{"id":"https://example.com/ci"},"buildType":"https://zen.dev/pipeline-run/v1","invocation":{"configSource":{"entryPoint":"p.s.o"}},"metadata":{"buildInvocationID":"r"}}`,
		"another type":    `{"builder":{"id":"https://zen.dev/builder/v1"},"buildType":"zen","invocation":{"configSource":{"entryPoint":"p.s.o"}},"metadata":{"buildInvocationID":"r"}}`,
		"no run":          `{"builder":{"id":"https://zen.dev/builder/v1"},"buildType":"https://zen.dev/pipeline-run/v1","invocation":{"configSource":{"entryPoint":"p.s.o"}}}`,
		"no entry point":  `{"builder":{"id":"https://zen.dev/builder/v1"},"buildType":"https://zen.dev/pipeline-run/v1","metadata":{"buildInvocationID":"r"}}`,
	} {
		if _, err := Parse(json.RawMessage(raw)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestMismatch(t *testing.T) {
	in := func(d string) map[string]string { return map[string]string{"data": "sha256:" + d} }
	want := &Build{Entry: "p.s.o", Run: "r1", Commit: "c1", Inputs: in("aa")}
	for _, tt := range []struct {
		got  Build
		want string
	}{
		{Build{Entry: "p.s.o", Run: "r1", Commit: "c1", Inputs: in("aa")}, ""},
		{Build{Entry: "p.s.x", Run: "r1", Commit: "c1", Inputs: in("aa")}, "names entry point p.s.x, the record p.s.o"},
		{Build{Entry: "p.s.o", Run: "r2", Commit: "c1", Inputs: in("aa")}, "names run r2, the record r1"},
		{Build{Entry: "p.s.o", Run: "r1", Commit: "c2", Inputs: in("aa")}, "names commit c2, the record c1"},
		{Build{Entry: "p.s.o", Run: "r1", Commit: "c1", Inputs: in("bb")}, "names input data as sha256:bb, the record sha256:aa"},
		{Build{Entry: "p.s.o", Run: "r1", Commit: "c1"}, "does not name input data"},
		{Build{Entry: "p.s.o", Run: "r1", Commit: "c1", Inputs: map[string]string{"data": "sha256:aa", "more": "sha256:cc"}}, "names input more, which the record does not"},
	} {
		if got := Mismatch(&tt.got, want); got != tt.want {
			t.Errorf("Mismatch(%+v) = %q, want %q", tt.got, got, tt.want)
		}
	}
	// A record without inputs (made before they were kept) checks none.
	if got := Mismatch(&Build{Entry: "p.s.o", Run: "r1", Commit: "c1", Inputs: in("zz")}, &Build{Entry: "p.s.o", Run: "r1", Commit: "c1"}); got != "" {
		t.Errorf("no recorded inputs: %q", got)
	}
}

// TestRunOfAnotherCommit attests a model version declared by one commit
// from the output of an experiment run of another, dirty: the attestation
// names both, in SLSA's own fields, and each is compared with the record.
func TestRunOfAnotherCommit(t *testing.T) {
	declared, ran := strings.Repeat("c", 40), strings.Repeat("e", 40)
	dirty := "sha256:" + strings.Repeat("d", 64)
	b := &Build{Entry: "p.train.model", Run: "20261202-101500.000-abcdef", Commit: declared, RunCommit: ran, RunDirty: dirty}
	raw, err := b.Predicate()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"configSource":{"uri":"git+commit:` + declared + `","digest":{"sha1":"` + declared + `"}`,
		`"buildInvocationID":"20261202-101500.000-abcdef"`,
		`{"uri":"zen:run/20261202-101500.000-abcdef","digest":{"sha1":"` + ran + `"}}`,
		`{"uri":"zen:run/20261202-101500.000-abcdef/dirty-tree","digest":{"sha256":"` + strings.Repeat("d", 64) + `"}}`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("predicate %s lacks %s", raw, want)
		}
	}
	got, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.RunCommit != ran || got.RunDirty != dirty || got.Commit != declared || got.Dirty != "" {
		t.Errorf("parsed %+v", got)
	}
	if why := Mismatch(got, b); why != "" {
		t.Errorf("round trip: %s", why)
	}
	for _, tt := range []struct {
		want Build
		why  string
	}{
		{Build{Entry: b.Entry, Run: b.Run, Commit: declared, RunCommit: declared}, "names run " + b.Run + " from commit " + ran + ", the record from " + declared},
		{Build{Entry: b.Entry, Run: b.Run, Commit: declared, RunCommit: ran}, "names run " + b.Run + "'s uncommitted changes as " + dirty + ", the record none"},
		{Build{Entry: b.Entry, Run: b.Run, Commit: ran, RunCommit: ran, RunDirty: dirty}, "names commit " + declared + ", the record " + ran},
		// A record made before zen kept the run's commit compares none.
		{Build{Entry: b.Entry, Run: b.Run, Commit: declared}, ""},
	} {
		if why := Mismatch(got, &tt.want); why != tt.why {
			t.Errorf("Mismatch against %+v = %q, want %q", tt.want, why, tt.why)
		}
	}

	// An attestation made before zen named the run's commit, against a
	// record that does: a mismatch, said so.
	old := &Build{Entry: b.Entry, Run: b.Run, Commit: declared}
	raw, err = old.Predicate()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "zen:run/") {
		t.Errorf("a build that names no run's commit has a run material: %s", raw)
	}
	got, err = Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if why := Mismatch(got, b); why != "does not name the commit run "+b.Run+" ran from, the record "+ran {
		t.Errorf("old attestation, new record: %q", why)
	}

	// A run material must name the attested run.
	bad := strings.Replace(string(raw), `"materials":[`, `"materials":[{"uri":"zen:run/other","digest":{"sha1":"`+ran+`"}},`, 1)
	if _, err := Parse(json.RawMessage(bad)); err == nil || !strings.Contains(err.Error(), "names run other as its material but run "+b.Run+" as the build") {
		t.Errorf("Parse of a run material naming another run: %v", err)
	}
}

// TestImage attests a step run in an image: the image is a material, by
// its manifest digest, and a record that names another image, or one the
// attestation does not name, is a mismatch; a record without an image
// (a step on the host, or made before zen kept it) compares none.
func TestImage(t *testing.T) {
	img := "127.0.0.1:5000/base@sha256:" + strings.Repeat("b", 64)
	b := &Build{Entry: "p.s.o", Run: "r1", Commit: "c1", Image: img}
	raw, err := b.Predicate()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"uri":"oci://127.0.0.1:5000/base","digest":{"sha256":"` + strings.Repeat("b", 64) + `"}}`; !strings.Contains(string(raw), want) {
		t.Errorf("predicate %s lacks %s", raw, want)
	}
	got, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.Image != img || Mismatch(got, b) != "" {
		t.Errorf("round trip: %+v", got)
	}
	other := "127.0.0.1:5000/base@sha256:" + strings.Repeat("c", 64)
	for _, tt := range []struct{ got, want, why string }{
		{img, other, "names image " + img + ", the record " + other},
		{"", img, "names no image, the record " + img},
		{img, "", ""},
		{"", "", ""},
	} {
		if why := Mismatch(&Build{Entry: "p.s.o", Run: "r1", Image: tt.got}, &Build{Entry: "p.s.o", Run: "r1", Image: tt.want}); why != tt.why {
			t.Errorf("got image %q, record %q: %q, want %q", tt.got, tt.want, why, tt.why)
		}
	}
	if _, err := (&Build{Entry: "p.s.o", Run: "r1", Image: "base:1"}).Predicate(); err == nil {
		t.Error("attested an image by tag")
	}
}
