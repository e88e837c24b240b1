package examples

import (
	"io/fs"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/encoding/yaml"
)

// load parses a CI template as YAML.
func load(t *testing.T, name string) cue.Value {
	t.Helper()
	src, err := fs.ReadFile(CI, name)
	if err != nil {
		t.Fatal(err)
	}
	f, err := yaml.Extract(name, src)
	if err != nil {
		t.Fatalf("%s is not YAML: %v", name, err)
	}
	v := cuecontext.New().BuildFile(f)
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	return v
}

func str(t *testing.T, v cue.Value, path string) string {
	t.Helper()
	s, err := v.LookupPath(cue.ParsePath(path)).String()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// runs joins a job's shell lines.
func runs(t *testing.T, v cue.Value, path string) string {
	t.Helper()
	var out []string
	it, err := v.LookupPath(cue.ParsePath(path)).List()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for it.Next() {
		if s, err := it.Value().String(); err == nil {
			out = append(out, s)
		} else if r, err := it.Value().LookupPath(cue.ParsePath("run")).String(); err == nil {
			out = append(out, r)
		}
	}
	return strings.Join(out, "\n")
}

func TestGitHubWorkflow(t *testing.T) {
	v := load(t, "ci/github/zen.yml")
	if got := str(t, v, "jobs.plan.if"); got != "github.event_name == 'pull_request'" {
		t.Errorf("plan runs if %q", got)
	}
	plan := runs(t, v, "jobs.plan.steps")
	for _, want := range []string{"zen plan --detailed-exitcode --output markdown > plan.md", `[ "$code" -ne 1 ]`, "gh pr comment"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan job lacks %q:\n%s", want, plan)
		}
	}
	if got := str(t, v, "jobs.apply.if"); got != "github.event_name == 'push'" {
		t.Errorf("apply runs if %q", got)
	}
	if got := str(t, v, "jobs.apply.concurrency.group"); got != "zen-apply" {
		t.Errorf("apply concurrency %q", got)
	}
	if apply := runs(t, v, "jobs.apply.steps"); !strings.Contains(apply, "zen apply") {
		t.Errorf("apply job does not apply:\n%s", apply)
	}
	if got := str(t, v, "permissions.contents"); got != "write" {
		t.Errorf("contents permission %q: the state ref cannot be pushed", got)
	}
}

func TestGitLabPipeline(t *testing.T) {
	v := load(t, "ci/gitlab/.gitlab-ci.yml")
	plan := runs(t, v, `"zen plan".script`)
	for _, want := range []string{"zen plan --detailed-exitcode --output markdown > plan.md", `test "$code" -ne 1`, "/notes"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan job lacks %q:\n%s", want, plan)
		}
	}
	if apply := runs(t, v, `"zen apply".script`); !strings.Contains(apply, "zen apply") {
		t.Errorf("apply job does not apply:\n%s", apply)
	}
	if got := str(t, v, `"zen apply".resource_group`); got != "zen-apply" {
		t.Errorf("apply resource_group %q", got)
	}
}
