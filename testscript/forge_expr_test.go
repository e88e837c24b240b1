package testscript

import (
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
		return f.ghContext(path, ghc, map[string]map[string]string{"plan": {"exitcode": "2"}})
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
