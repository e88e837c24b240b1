package schema

import (
	"reflect"
	"strings"
	"testing"
)

func TestLoadPlotOutputs(t *testing.T) {
	src := `package zen

pipelines: p: steps: {
	eval: {
		run: ["x"]
		outputs: {
			roc: {type: "plot", x: "fpr", y: "tpr", title: "ROC"}
			loss: {type: "plot", y: ["train", "val"]}
			curve: type: "plot"
			report: type: "json"
		}
	}
	// A step reading a plot output: the reference carries x, y and title.
	publish: {
		run: ["x"]
		inputs: roc: steps.eval.outputs.roc
	}
}
`
	cfg, err := Load(write(t, map[string]string{"zen.cue": src}))
	if err != nil {
		t.Fatal(err)
	}
	outs := cfg.Pipelines["p"].Steps["eval"].Outputs
	for name, want := range map[string]*PlotSpec{
		"roc":    {X: "fpr", Y: []string{"tpr"}, Title: "ROC"},
		"loss":   {Y: []string{"train", "val"}},
		"curve":  {},
		"report": nil,
	} {
		if got := outs[name].Plot; !reflect.DeepEqual(got, want) {
			t.Errorf("output %s: plot = %+v, want %+v", name, got, want)
		}
	}
	in := cfg.Pipelines["p"].Steps["publish"].Inputs["roc"]
	if in.Kind != InputStep || in.Step != "eval" || in.Output != "roc" || in.Type != "plot" {
		t.Errorf("input roc = %+v", in)
	}
}

func TestLoadPlotOutputErrors(t *testing.T) {
	base := "package zen\n\n"
	tests := []struct {
		name, src string
		want      string // the whole first line of the error
	}{
		{"x on a file", base + `pipelines: p: steps: s: {run: ["x"], outputs: o: {type: "file", x: "a"}}`, `zen.cue:3:65: pipelines.p.steps.s.outputs.o.x: x is for outputs of type plot (this one is file)`},
		{"title on json", base + `pipelines: p: steps: s: {run: ["x"], outputs: o: {type: "json", title: "t"}}`, `zen.cue:3:65: pipelines.p.steps.s.outputs.o.title: title is for outputs of type plot (this one is json)`},
		{"empty x", base + `pipelines: p: steps: s: {run: ["x"], outputs: o: {type: "plot", x: ""}}`, `zen.cue:3:65: pipelines.p.steps.s.outputs.o.x: x is empty: name the column of the x values, or leave x out to draw against the row number`},
		{"y is x", base + `pipelines: p: steps: s: {run: ["x"], outputs: o: {type: "plot", x: "a", y: ["b", "a"]}}`, `zen.cue:3:73: pipelines.p.steps.s.outputs.o.y: y names "a", the x column: name the columns to draw against it`},
		{"y twice", base + `pipelines: p: steps: s: {run: ["x"], outputs: o: {type: "plot", y: ["b", "b"]}}`, `zen.cue:3:65: pipelines.p.steps.s.outputs.o.y: y names "b" twice`},
		{"y empty", base + `pipelines: p: steps: s: {run: ["x"], outputs: o: {type: "plot", y: ""}}`, `zen.cue:3:65: pipelines.p.steps.s.outputs.o.y: y names an empty column`},
		{"y a number", base + `pipelines: p: steps: s: {run: ["x"], outputs: o: {type: "plot", y: 3}}`, `zen.cue:3:68: pipelines.p.steps.s.outputs.o.y: conflicting values 3 and [...string] (mismatched types int and list)`},
		{"unknown field", base + `pipelines: p: steps: s: {run: ["x"], outputs: o: {type: "plot", z: "a"}}`, `zen.cue:3:65: pipelines.p.steps.s.outputs.o.z: field not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(write(t, map[string]string{"zen.cue": tt.src}))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			first := strings.SplitN(err.Error(), "\n", 2)[0]
			if !strings.HasPrefix(first, tt.want) {
				t.Errorf("error:\n%s\nwant first line starting with:\n%s", err, tt.want)
			}
		})
	}
}
