package testscript

import (
	"net/url"
	"strings"
	"testing"
)

// The CI harness's evaluators know what the workflows use, and fail on
// anything else, so that a template cannot drift past them.
func TestGitHubExpressions(t *testing.T) {
	ctx := func(path string) (any, error) {
		f := &forge{secrets: map[string]string{"REGISTRY_USER": "bot"}, head: "#   REGISTRY_USER  x\n#   COSIGN_PASSWORD  y\n"}
		ghc := map[string]any{
			"event_name": "push", "ref_name": "trunk",
			"event": map[string]any{"repository": map[string]any{"default_branch": "trunk"}, "pull_request": map[string]any{"number": float64(7)}},
		}
		return f.ghContext(path, &ghContexts{github: ghc, runner: map[string]any{"temp": "/tmp/job"}, steps: map[string]*ghStepResult{
			"plan":    {outcome: "success", conclusion: "success", outputs: map[string]string{"exitcode": "2"}},
			"preview": {outcome: "failure", conclusion: "success", outputs: map[string]string{}},
			"fork":    {outcome: "skipped", conclusion: "skipped", outputs: map[string]string{}},
		}})
	}
	conds := []struct {
		cond, status string
		want         bool
	}{
		{"", "success", true},
		{"", "failure", false},
		{"failure()", "failure", true},
		{"failure()", "success", false},
		{"always() && steps.plan.outputs.exitcode != '1'", "failure", true},
		{"github.event_name == 'push' && github.ref_name == github.event.repository.default_branch", "success", true},
		{"github.event_name == 'PUSH'", "success", true}, // strings compare ignoring case
		{"github.event_name == 'pull_request'", "success", false},
		{"${{ !(github.ref_name == 'main') }}", "success", true},
		{"github.event.pull_request.number == '7'", "success", true},
		{"steps.plan.outputs.missing == ''", "success", true},
		{"steps.preview.outcome == 'failure'", "success", true},
		{"steps.preview.conclusion == 'failure'", "success", false}, // continue-on-error
		{"steps.fork.outcome == 'skipped'", "success", true},
	}
	for _, c := range conds {
		got, err := ghCondition(c.cond, ctx, c.status)
		if err != nil || got != c.want {
			t.Errorf("if: %s (status %s) = %v, %v; want %v", c.cond, c.status, got, err, c.want)
		}
	}
	subst := map[string]string{
		`gh pr comment "${{ github.event.pull_request.number }}"`: `gh pr comment "7"`,
		"${{ secrets.REGISTRY_USER }}":                            "bot",
		"${{ secrets.COSIGN_PASSWORD }}":                          "", // documented, not set
		"a ${{ 'it''s' }} b":                                      "a it's b",
		"${{ runner.temp }}/plots":                                "/tmp/job/plots",
	}
	for in, want := range subst {
		if got, err := ghSubst(in, ctx); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"${{ github.actor }}":                   "unknown context github.actor",
		"${{ secrets.NOT_IN_HEAD }}":            "its head does not name it",
		"${{ steps.nope.outputs.x }}":           "no earlier step has id nope",
		"${{ steps.plan.status }}":              "unknown context steps.plan.status",
		"${{ runner.arch }}":                    "unknown context runner.arch",
		"${{ vars.X }}":                         "unknown context vars.X",
		"${{ contains(github.ref_name, 'x') }}": "the harness knows only status functions",
		"${{ github.event.repository }}":        "is an object",
		"${{ github.ref_name >= 'a' }}":         "the harness does not know it",
		"${{ github.ref_name":                   "unclosed",
		"${{ hashFiles() }}":                    "function hashFiles()",
		"${{ github.ref_name == 'a' | 'b' }}":   "unknown syntax",
	}
	for in, want := range bad {
		if _, err := ghSubst(in, ctx); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want one saying %q", in, err, want)
		}
	}
}

func TestGitLabRules(t *testing.T) {
	vars := map[string]string{"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "trunk", "CI_DEFAULT_BRANCH": "trunk", "EMPTY": ""}
	good := map[string]bool{
		`$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH`:                           true,
		`$CI_PIPELINE_SOURCE == "merge_request_event"`:                      false,
		`$CI_MERGE_REQUEST_IID == null`:                                     true, // known, not set
		`$CI_MERGE_REQUEST_IID == $CI_DEFAULT_BRANCH`:                       false,
		`$CI_COMMIT_BRANCH`:                                                 true,
		`$EMPTY`:                                                            false,
		`($CI_PIPELINE_SOURCE == 'push' && $EMPTY == "") || $CI_COMMIT_TAG`: true,
		`${CI_COMMIT_BRANCH} != "main"`:                                     true,
	}
	for src, want := range good {
		e := &glExpr{scanner: scanner{src: src, blanks: " "}, vars: vars}
		if got, err := e.parse(); err != nil || got != want {
			t.Errorf("%s = %v, %v; want %v", src, got, err, want)
		}
	}
	bad := map[string]string{
		`$CI_COMMIT_BRANCH =~ /^main$/`: "regular expressions",
		`$CI_SOMETHING_NEW == "x"`:      "the harness does not know it",
		`$CI_COMMIT_BRANCH == "x`:       "unclosed string",
		`$CI_COMMIT_BRANCH == main`:     "unknown syntax",
		`($CI_COMMIT_BRANCH == "x"`:     "missing )",
	}
	for src, want := range bad {
		e := &glExpr{scanner: scanner{src: src, blanks: " "}, vars: vars}
		if _, err := e.parse(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want one saying %q", src, err, want)
		}
	}
}

// The notes API lists as GitLab does: newest first by default, pages of 20
// at most 100, and a parameter it does not know is an error.
func TestGitLabNotesList(t *testing.T) {
	var notes []*glNote
	for i := 1; i <= 120; i++ {
		notes = append(notes, &glNote{ID: i, CreatedAt: glTime(i), UpdatedAt: glTime(200 - i)})
	}
	ids := func(q string) []int {
		v, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		list, err := listNotes(notes, v)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var out []int
		for _, n := range list {
			out = append(out, n.ID)
		}
		return out
	}
	for q, want := range map[string][2]int{ // the first id and the last
		"":                               {120, 101},
		"sort=asc&per_page=100":          {1, 100},
		"sort=asc&per_page=500&page=2":   {101, 120},
		"order_by=updated_at&per_page=3": {1, 3}, // the oldest created was updated last
	} {
		got := ids(q)
		if len(got) == 0 || got[0] != want[0] || got[len(got)-1] != want[1] {
			t.Errorf("%q: %v, want %d … %d", q, got, want[0], want[1])
		}
	}
	if got := ids("sort=asc&page=7"); len(got) != 0 {
		t.Errorf("page 7 of 120 notes: %v, want none", got)
	}
	for q, want := range map[string]string{"search=zen": "parameter search", "sort=up": "sort does not", "per_page=0": "per_page is invalid"} {
		v, _ := url.ParseQuery(q)
		if _, err := listNotes(notes, v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want one saying %q", q, err, want)
		}
	}
}
