package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/state"
	"github.com/zen-dev/zen/ui"
)

// BenchmarkUI10000Runs: zen ui's pages on a state ref holding 10,000 runs
// of a year (metricsState's) and 1,000 model versions (10 models of 100
// versions, each made by one of the runs, with a stage), served in
// process as zen ui serves them:
//
//   - first-page: the runs list's first page (target: under 300 ms);
//   - run-page: a run's page, its step graph and what the store holds of
//     its artifacts (target: under 100 ms);
//   - version-page: a model version, its signature check and lineage.
func BenchmarkUI10000Runs(b *testing.B) {
	const n = 10000
	wd, _ := os.Getwd()
	b.Cleanup(func() { os.Chdir(wd) })
	dir := b.TempDir()
	ids := metricsState(b, dir, n, func(i int) string { return fmt.Sprintf("p%02d", i%10) }, true)
	st, err := state.Open(dir, state.DefaultRef)
	if err != nil {
		b.Fatal(err)
	}
	files := map[string][]byte{}
	created := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for m := range 10 {
		model := fmt.Sprintf("model-%d", m)
		stages := &state.Stages{Version: state.RecordVersion, Model: model, Stages: map[string]*state.Stage{}}
		for v := range 100 {
			run := ids[m*1000+v*10]
			mv := &state.ModelVersion{Version: state.RecordVersion, Model: model, ModelVersion: fmt.Sprintf("1.%d.0", v),
				Digest: "sha256:" + fmt.Sprintf("%064x", m*1000+v), Repository: ".zen/store/models/" + model, Stack: "local",
				Pipeline: fmt.Sprintf("p%02d", (m*1000+v*10)%10), Step: "train", Output: "out", OutputDigest: "sha256:" + strings.Repeat("d", 64),
				RunID: run, SourceCommit: fmt.Sprintf("%040x", m*1000+v*10), Metrics: map[string]float64{"evaluate.auc": 0.9},
				Declared: json.RawMessage("{}"), Created: created.Add(time.Duration(m*100+v) * time.Minute)}
			data, err := state.Encode(mv)
			if err != nil {
				b.Fatal(err)
			}
			files[state.ModelVersionPath(model, mv.ModelVersion)] = data
			stages.Stages["production"] = &state.Stage{ModelVersion: mv.ModelVersion, Digest: mv.Digest, SourceCommit: mv.SourceCommit, Updated: mv.Created}
		}
		data, err := state.Encode(stages)
		if err != nil {
			b.Fatal(err)
		}
		files[state.StagesPath(model)] = data
	}
	if _, err := st.Commit(context.Background(), "", state.Change{Files: files, Message: "models"}); err != nil {
		b.Fatal(err)
	}
	p, err := zen.Open(dir, zen.Options{Remote: "none"})
	if err != nil {
		b.Fatal(err)
	}
	h, err := ui.New(p, ui.Options{})
	if err != nil {
		b.Fatal(err)
	}
	get := func(sb *testing.B, path, want string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			sb.Fatalf("GET %s: %d, lacks %q\n%s", path, rec.Code, want, rec.Body.String())
		}
	}
	for _, c := range []struct{ name, path, want string }{
		{"first-page", "/", `data-run="` + ids[n-1] + `"`},
		{"run-page", "/runs/" + ids[n/2], `data-step="evaluate"`},
		{"version-page", "/models/model-3/versions/1.42.0", `id="lineage"`},
	} {
		b.Run(c.name, func(sb *testing.B) {
			get(sb, c.path, c.want)
			sb.ResetTimer()
			for range sb.N {
				get(sb, c.path, c.want)
			}
		})
	}
}
