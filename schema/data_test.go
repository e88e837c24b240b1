package schema

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDataRef(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, tt := range []struct {
		ref, name, digest, err string
	}{
		{ref: "iris@" + d, name: "iris", digest: d},
		{ref: "train-set@" + d, name: "train-set", digest: d},
		{ref: "iris", err: `data "iris": want NAME@sha256:<64 hex digits>`},
		{ref: "iris@latest", err: `"latest" is not a sha256 digest`},
		{ref: "iris@sha256:abc", err: `"sha256:abc" is not a sha256 digest`},
		{ref: "iris@sha256:" + strings.Repeat("AB", 32), err: "is not a sha256 digest"},
		{ref: "Iris@" + d, err: `data name "Iris"`},
	} {
		name, digest, err := ParseDataRef(tt.ref)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want %q", tt.ref, err, tt.err)
		case tt.err == "" && (err != nil || name != tt.name || digest != tt.digest):
			t.Errorf("%s: %q %q %v, want %q %q", tt.ref, name, digest, err, tt.name, tt.digest)
		}
	}
}

// TestLoadDataInput checks the {data: …} input, and that file and dir
// inputs say whether git ignores their path: by the root's .gitignore, a
// folder's own, .git/info/exclude, or a pattern for a parent folder.
func TestLoadDataInput(t *testing.T) {
	d := "sha256:" + strings.Repeat("0f", 32)
	dir := write(t, map[string]string{
		"zen.cue":                "",
		".gitignore":             "*.bin\n",
		".git/info/exclude":      "local.csv\n",
		"data/.gitignore":        "raw/\n!keep.bin\n",
		"data/raw/a.csv":         "a",
		"data/tracked.csv":       "t",
		"data/keep.bin":          "k",
		"data/blob.bin":          "b",
		"local.csv":              "l",
		"images/sub/picture.png": "p",
	})
	inputs := `{
		d: {data: "iris@` + d + `"}
		raw: {file: "data/raw/a.csv"}
		rawdir: {dir: "data/raw"}
		tracked: {file: "data/tracked.csv"}
		keep: {file: "data/keep.bin"}
		blob: {file: "data/blob.bin"}
		local: {file: "local.csv"}
		opted: {file: "local.csv", ignored: true}
		images: {dir: "images"}
	}`
	os.WriteFile(filepath.Join(dir, "zen.cue"), []byte("package zen\n\npipelines: p: steps: s: {run: [\"x\"], inputs: "+inputs+"}\n"), 0o644)
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Pipelines["p"].Steps["s"].Inputs
	if in["d"].Kind != InputData || in["d"].Data != "iris" || in["d"].Digest != d || in["d"].Source() != "iris@"+d {
		t.Errorf("data input: %+v", in["d"])
	}
	for name, want := range map[string]bool{"raw": true, "rawdir": true, "tracked": false, "keep": false, "blob": true, "local": true, "opted": true, "images": false} {
		if in[name].GitIgnored != want {
			t.Errorf("input %s (%s): GitIgnored %v, want %v", name, in[name].Path, in[name].GitIgnored, want)
		}
	}
	if !in["opted"].Ignored || in["local"].Ignored {
		t.Errorf("ignored: true: opted %v, local %v", in["opted"].Ignored, in["local"].Ignored)
	}

	// Outside a git work tree nothing is ignored.
	os.RemoveAll(filepath.Join(dir, ".git"))
	if cfg, err = Load(dir); err != nil {
		t.Fatal(err)
	}
	if cfg.Pipelines["p"].Steps["s"].Inputs["blob"].GitIgnored {
		t.Error("GitIgnored without .git")
	}

	for src, want := range map[string]string{
		`{data: "iris@latest"}`:                   `zen.cue:3:50: pipelines.p.steps.s.inputs.i.data: data "iris@latest": "latest" is not a sha256 digest`,
		`{data: "iris@` + d + `", file: "x"}`:     `zen.cue:3:46: pipelines.p.steps.s.inputs.i: an input is one of: `,
		`{data: "iris@` + d + `", ignored: true}`: `zen.cue:3:136: pipelines.p.steps.s.inputs.i.ignored: only a file: or dir: input can be ignored by git`,
	} {
		os.WriteFile(filepath.Join(dir, "zen.cue"), []byte("package zen\n\npipelines: p: steps: s: {run: [\"x\"], inputs: i: "+src+"}\n"), 0o644)
		if _, err := Load(dir); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %v, want %s", src, err, want)
		}
	}
}
