package apply

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/zen-dev/zen/schema"
)

func TestReadMetrics(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want, err string
	}{
		{"flat", `{"a": 1, "b": 0.5}`, "a=1 b=0.5", ""},
		{"nested", `{"eval": {"f1": 0.9, "deep": {"x": 2}}}`, "eval.deep.x=2 eval.f1=0.9", ""},
		{"string", `{"a": "high"}`, "", "metrics: a is not a number"},
		{"array", `[1, 2]`, "", "want a JSON object of numbers"},
		{"broken", `{"a": `, "", "want a JSON object of numbers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name+".json")
			os.WriteFile(p, []byte(tt.content), 0o644)
			m, err := readMetrics(p)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range slices.Sorted(maps.Keys(m)) {
				got = append(got, k+"="+strconv.FormatFloat(m[k], 'g', -1, 64))
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("got %v, want %s", got, tt.want)
			}
		})
	}
	if m, err := readMetrics(filepath.Join(dir, "absent.json")); err != nil || m != nil {
		t.Errorf("absent metrics: %v, %v", m, err)
	}
}

// TestReadMetricsHostile reads metrics files a step set up to exhaust zen:
// an endless file, a FIFO no one writes to, a huge file. Each is refused
// at once.
func TestReadMetricsHostile(t *testing.T) {
	dir := t.TempDir()
	zero := filepath.Join(dir, "zero.json")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub.json")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.json")
	if err := os.WriteFile(huge, []byte(`{"a": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 1<<30); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		zero: "metrics ($ZEN_METRICS): is a symbolic link; write the JSON itself",
		fifo: "metrics ($ZEN_METRICS): is a named pipe; write the JSON itself",
		sub:  "metrics ($ZEN_METRICS): is a folder; write the JSON itself",
		huge: "metrics ($ZEN_METRICS): 1073741824 bytes, more than the 1048576 a step may write",
	} {
		if _, err := readMetrics(p); err == nil || err.Error() != want {
			t.Errorf("readMetrics(%s) = %v, want %q", filepath.Base(p), err, want)
		}
	}
}

// TestOnceRefusesBadDigests checks that a digest that is not one (from a
// record edited by hand) never becomes a path.
func TestOnceRefusesBadDigests(t *testing.T) {
	work := t.TempDir()
	a := &applier{work: filepath.Join(work, "apply"), pulled: map[string]*pull{}}
	for _, d := range []string{"sha256:../../../escaped", "sha256:" + strings.Repeat("AB", 32), "sha512:00", "", "sha256:" + strings.Repeat("a", 63) + "/"} {
		_, err := a.once("models", d, func(string) error { t.Fatalf("fetched %q", d); return nil })
		if err == nil || !strings.Contains(err.Error(), "is not a sha256 digest") {
			t.Errorf("once(%q) = %v", d, err)
		}
	}
	if left, _ := os.ReadDir(work); len(left) != 0 {
		t.Errorf("once left %v", left)
	}
	good := "sha256:" + strings.Repeat("ab", 32)
	p, err := a.once("models", good, func(dest string) error { return os.WriteFile(dest, nil, 0o644) })
	if err != nil || p != filepath.Join(work, "apply", "models", strings.Repeat("ab", 32)) {
		t.Errorf("once(good) = %s, %v", p, err)
	}
}

func TestCheckOutputs(t *testing.T) {
	step := &schema.Step{Outputs: map[string]*schema.Output{
		"f": {Name: "f", Type: "file"}, "j": {Name: "j", Type: "json"}, "d": {Name: "d", Type: "dir"}, "m": {Name: "m", Type: "model"},
	}}
	tests := []struct {
		name  string
		setup func(dir string)
		err   string
	}{
		{"all good", func(d string) {}, ""},
		{"missing", func(d string) { os.Remove(filepath.Join(d, "f")) }, "output f: not written"},
		{"extra", func(d string) { os.WriteFile(filepath.Join(d, "x"), nil, 0o644) }, "wrote undeclared outputs: x"},
		{"bad json", func(d string) { os.WriteFile(filepath.Join(d, "j"), []byte("{"), 0o644) }, "output j: type json: not valid JSON"},
		{"dir is file", func(d string) { os.RemoveAll(filepath.Join(d, "d")); os.WriteFile(filepath.Join(d, "d"), nil, 0o644) }, "output d: type dir, but the step wrote a file"},
		{"empty model dir", func(d string) { os.Remove(filepath.Join(d, "m")); os.Mkdir(filepath.Join(d, "m"), 0o755) }, "output m: type model, but the folder is empty"},
		{"symlink", func(d string) { os.Remove(filepath.Join(d, "f")); os.Symlink("/etc/passwd", filepath.Join(d, "f")) }, "output f: is a symbolic link"},
		{"outputs folder made a link", func(d string) {
			os.Rename(d, d+".real")
			os.Symlink(d+".real", d)
		}, "$ZEN_OUTPUTS: the step replaced the folder with a symbolic link; write the outputs into it"},
		{"outputs folder made a file", func(d string) { os.RemoveAll(d); os.WriteFile(d, nil, 0o644) }, "$ZEN_OUTPUTS: the step replaced the folder with a file; write the outputs into it"},
		{"fifo model", func(d string) { os.Remove(filepath.Join(d, "m")); syscall.Mkfifo(filepath.Join(d, "m"), 0o644) }, "output m: type model must be a file or a folder, not a named pipe"},
		{"fifo file", func(d string) { os.Remove(filepath.Join(d, "f")); syscall.Mkfifo(filepath.Join(d, "f"), 0o644) }, "output f: type file must be a file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o644)
			os.WriteFile(filepath.Join(d, "j"), []byte(`{"a": 1}`), 0o644)
			os.Mkdir(filepath.Join(d, "d"), 0o755)
			os.WriteFile(filepath.Join(d, "m"), []byte("weights"), 0o644)
			tt.setup(d)
			err := checkOutputs(step, d)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestLookupSecret(t *testing.T) {
	t.Setenv("ZEN_SECRET_DB_PASSWORD", "hunter2")
	if v, err := LookupSecret("db.password"); err != nil || v != "hunter2" {
		t.Fatalf("env: %q, %v", v, err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "api"), []byte("from-file\n"), 0o600)
	t.Setenv("ZEN_SECRETS_DIR", dir)
	if v, err := LookupSecret("api"); err != nil || v != "from-file" {
		t.Fatalf("file: %q, %v", v, err)
	}
	_, err := LookupSecret("nope")
	if err == nil || !strings.Contains(err.Error(), "export ZEN_SECRET_NOPE") {
		t.Fatalf("missing: %v", err)
	}
}

func TestRedact(t *testing.T) {
	if r := Redact("token abc and abc", []string{"abc", ""}); r != "token *** and ***" {
		t.Fatalf("redact: %q", r)
	}
}
