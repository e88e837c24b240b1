package plan

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestReadSavedHostile reads plan files edited by hand, their digest made
// again so that only their content is wrong: a request zen never writes
// is refused naming the file, and JSON that is not an object says so.
func TestReadSavedHostile(t *testing.T) {
	save := func(req Request) []byte {
		var b bytes.Buffer
		if err := WriteSaved(&b, "test", req, &Plan{Version: Version, Stack: "local"}); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"stack with a path", save(Request{Stack: "../../etc"}), `its request names stack "../../etc", which zen plan -o never writes: the file was edited`},
		{"no stack", save(Request{}), `its request names stack ""`},
		{"pipeline with a path", save(Request{Stack: "local", Pipelines: []string{"../demo"}}), `its request names pipeline "../demo"`},
		{"stack with a dot", save(Request{Stack: "gpu.cluster"}), `its request names stack "gpu.cluster"`},
		{"set that does not parse", save(Request{Stack: "local", Sets: []string{"garbage"}}), `its request holds --set "garbage"`},
		{"array", []byte("[1, 2]\n"), "it is JSON, but not the object zen plan -o writes"},
		{"string", []byte(`"zen-plan"`), "it is JSON, but not the object zen plan -o writes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadSaved(bytes.NewReader(tt.data), "plan.zen")
			if !errors.Is(err, ErrNotSaved) || !strings.HasPrefix(err.Error(), "plan.zen: not a zen plan file: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadSaved = %v, want %q", err, tt.want)
			}
		})
	}
	// What zen writes reads back.
	if _, err := ReadSaved(bytes.NewReader(save(Request{Stack: "gpu-cluster-1", Pipelines: []string{"training", "get-started"}, Sets: []string{"training.lr=0.1", "get-started.train.n-est=50"}})), "plan.zen"); err != nil {
		t.Errorf("a plan zen writes: %v", err)
	}
}
