package gate

import (
	"strings"
	"testing"
)

func TestParseEval(t *testing.T) {
	m := Metrics{"evaluate.roc_auc": 0.91, "evaluate.loss": 0.2, "train.loss": 0.1}
	prod := Metrics{"evaluate.roc_auc": 0.88}
	stage := func(s string) Metrics {
		if s == "production" {
			return prod
		}
		return nil
	}
	tests := []struct {
		src  string
		ok   bool
		want string // the rendered results, joined by "; "
		err  string
	}{
		{src: "roc_auc >= 0.85", ok: true, want: "roc_auc >= 0.85: 0.91 ✓"},
		{src: "roc_auc >= 0.95", ok: false, want: "roc_auc >= 0.95: 0.91 ✗"},
		{src: "roc_auc > 0.9 && evaluate.loss < 0.3", ok: true, want: "roc_auc > 0.9: 0.91 ✓; evaluate.loss < 0.3: 0.2 ✓"},
		{src: "evaluate.roc_auc >= production.evaluate.roc_auc", ok: true, want: "evaluate.roc_auc >= production.evaluate.roc_auc (0.88): 0.91 ✓"},
		{src: "roc_auc >= canary.roc_auc", ok: true, want: "roc_auc >= canary.roc_auc (0): 0.91 ✓"},
		{src: "loss < 1", err: `metric "loss" is ambiguous: evaluate.loss, train.loss; name the step`},
		{src: "f1 > 0", err: `no metric "f1" in the run`},
		{src: "roc_auc >>= 1", err: `"roc_auc >" is not a metric name`},
		{src: "a > 1 > 2", err: "one comparison per term"},
		{src: "roc_auc", err: "want METRIC OP VALUE"},
		{src: "roc_auc > staging.x", err: "want a number or STAGE.metric"},
		{src: "", err: "empty"},
		{src: "9x > 1", err: "is not a metric name"},
		{src: "roc_auc >= NaN", err: `gate "roc_auc >= NaN": "NaN": want a finite number`},
		{src: "roc_auc > -Inf", err: `"-Inf": want a finite number`},
		{src: "loss < +infinity", err: `"+infinity": want a finite number`},
		{src: "roc_auc >= 1e999", err: "want a number or STAGE.metric"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := Parse(tt.src, []string{"production", "canary"})
			var rs []Result
			var ok bool
			if err == nil {
				rs, ok, err = e.Eval(m, stage)
			}
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
			for _, r := range rs {
				got = append(got, r.String())
			}
			if ok != tt.ok || strings.Join(got, "; ") != tt.want {
				t.Fatalf("got %v %q, want %v %q", ok, strings.Join(got, "; "), tt.ok, tt.want)
			}
		})
	}
}
