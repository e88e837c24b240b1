package examples

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/zen-dev/zen/schema"
)

// ciConfig is a repository with a step that reads a secret, and stacks
// that can and cannot apply in CI.
func ciConfig() *schema.Config {
	stack := func(name string, store schema.Component, signer map[string]any) *schema.Stack {
		return &schema.Stack{Name: name, Orchestrator: schema.Component{Flavor: "local"}, ArtifactStore: store, Signer: signer}
	}
	registry := schema.Component{Flavor: "oci", Settings: map[string]any{"repository": "registry.example.com/ml/demo"}}
	cosign := map[string]any{"flavor": "cosign", "key": map[string]any{"secret": "release.key"}, "public_key": "cosign.pub"}
	return &schema.Config{
		DefaultStack: "local",
		Pipelines: map[string]*schema.Pipeline{
			"demo": {Name: "demo", Steps: map[string]*schema.Step{
				"train":    {Name: "train", Env: map[string]schema.EnvValue{"HF": {Secret: "hf_token"}, "MODE": {Value: "fast"}}},
				"evaluate": {Name: "evaluate", Env: map[string]schema.EnvValue{"HF": {Secret: "hf_token"}, "DB": {Secret: "db-password"}}},
			}},
		},
		Stacks: map[string]*schema.Stack{
			"local":      stack("local", schema.Component{Flavor: "oci-layout", Settings: map[string]any{"path": ".zen/store"}}, nil),
			"shared":     stack("shared", registry, nil),
			"ci.team-1":  stack("ci.team-1", registry, cosign),
			"unsigned":   stack("unsigned", registry, map[string]any{"flavor": "none"}),
			"hub":        stack("hub", schema.Component{Flavor: "oci", Settings: map[string]any{"repository": "acme/models"}}, map[string]any{"flavor": "none"}),
			"keyless":    stack("keyless", registry, map[string]any{"flavor": "cosign"}),
			"layout-ok":  stack("layout-ok", schema.Component{Flavor: "oci-layout"}, map[string]any{"flavor": "none"}),
			"bad-remote": stack("bad-remote", schema.Component{Flavor: "oci", Settings: map[string]any{"repository": "Not A Repo"}}, map[string]any{"flavor": "none"}),
		},
	}
}

// render renders a workflow and parses it as YAML.
func render(t *testing.T, system, stack string) (string, map[string]any) {
	t.Helper()
	cfg := ciConfig()
	cs, err := NewCIStack(system, cfg, cfg.Stacks[stack])
	if err != nil {
		t.Fatal(err)
	}
	out, err := RenderCI(system, cs)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(out, &v); err != nil {
		t.Fatalf("%s for stack %s is not YAML: %v\n%s", system, stack, err, out)
	}
	if strings.Contains(string(out), "[[") || strings.Contains(string(out), "]]") {
		t.Errorf("%s for stack %s keeps template actions:\n%s", system, stack, out)
	}
	return string(out), v
}

// head is a workflow's leading comment.
func head(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

func get(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not a mapping at %q", strings.Join(path, "."), p)
		}
		v = m[p]
	}
	return v
}

// runs joins the run: lines of a GitHub job's steps.
func runs(t *testing.T, v map[string]any, job string) string {
	var out []string
	for _, s := range get(t, v, "jobs", job, "steps").([]any) {
		if r, ok := s.(map[string]any)["run"].(string); ok {
			out = append(out, r)
		}
	}
	return strings.Join(out, "\n")
}

// step finds a GitHub job's step by its name, else its uses.
func step(t *testing.T, v map[string]any, job, name string) map[string]any {
	t.Helper()
	for _, s := range get(t, v, "jobs", job, "steps").([]any) {
		m := s.(map[string]any)
		if m["name"] == name || m["name"] == nil && m["uses"] == name {
			return m
		}
	}
	t.Fatalf("job %s has no step %s", job, name)
	return nil
}

// sameRepo is the condition of the preview job's steps that need the
// secrets: a fork's pull request gets none.
const sameRepo = "github.event.pull_request.head.repo.full_name == github.repository"

func TestGitHubWorkflow(t *testing.T) {
	out, v := render(t, "github", "ci.team-1")
	if got := get(t, v, "env", "ZEN_STACK"); got != "ci.team-1" {
		t.Errorf("ZEN_STACK %v", got)
	}
	if got := get(t, v, "jobs", "preview", "if"); got != "github.event_name == 'pull_request'" {
		t.Errorf("preview runs if %q", got)
	}
	if got := get(t, v, "jobs", "preview", "concurrency", "group"); got != "zen-preview-${{ github.head_ref }}" {
		t.Errorf("preview concurrency %q", got)
	}
	preview := runs(t, v, "preview")
	for _, want := range []string{
		`zen apply --preview --branch "$GITHUB_HEAD_REF"`,
		`zen plan --preview --branch "$GITHUB_HEAD_REF" --output markdown`,
		`--plots "$RUNNER_TEMP/plots"`,
		`--plots-url "$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID#artifacts"`,
		`> "$RUNNER_TEMP/plan.md"`,
		`gh pr comment "${{ github.event.pull_request.number }}" --body-file "$RUNNER_TEMP/plan.md" --edit-last`,
		`tee -a "$GITHUB_STEP_SUMMARY" < "$RUNNER_TEMP/plan.md"`,
	} {
		if !strings.Contains(preview, want) {
			t.Errorf("preview job lacks %q:\n%s", want, preview)
		}
	}
	// The branch name is the pull request's text: never an expression in
	// a script, where it would be run.
	if strings.Contains(preview, "github.head_ref") || strings.Contains(preview, "> plan.md") {
		t.Errorf("preview job writes the branch into a script, or the plan into the work tree:\n%s", preview)
	}
	// The preview runs with the secrets and does not stop the job when it
	// fails: the plan and the comment follow, then the job fails.
	pv := step(t, v, "preview", "zen preview")
	if pv["id"] != "preview" || pv["continue-on-error"] != true || pv["if"] != sameRepo {
		t.Errorf("zen preview step: %v", pv)
	}
	for _, name := range []string{"docker/login-action@v3", "zen plan", "actions/upload-artifact@v4", "comment the plan"} {
		if got := step(t, v, "preview", name)["if"]; got != sameRepo {
			t.Errorf("step %s runs if %v, want %s", name, got, sameRepo)
		}
	}
	if got := step(t, v, "preview", "zen plan (fork)")["if"]; got != "github.event.pull_request.head.repo.full_name != github.repository" {
		t.Errorf("the fork's plan runs if %v", got)
	}
	if got := get(t, step(t, v, "preview", "actions/upload-artifact@v4"), "with", "path"); got != "${{ runner.temp }}/plots" {
		t.Errorf("uploads %v", got)
	}
	last := get(t, v, "jobs", "preview", "steps").([]any)
	if got := last[len(last)-1].(map[string]any)["if"]; got != "steps.preview.outcome == 'failure'" {
		t.Errorf("the last step runs if %v, want the preview's failure", got)
	}
	if got := get(t, v, "jobs", "apply", "if"); got != "github.event_name == 'push' && github.ref_name == github.event.repository.default_branch" {
		t.Errorf("apply runs if %q", got)
	}
	if got := get(t, v, "jobs", "apply", "concurrency", "group"); got != "zen-apply" {
		t.Errorf("apply concurrency %q", got)
	}
	if apply := runs(t, v, "apply"); !strings.HasSuffix(apply, "zen preview clean --gone") {
		t.Errorf("apply does not end cleaning the previews of deleted branches:\n%s", apply)
	}
	if got := get(t, v, "permissions", "contents"); got != "write" {
		t.Errorf("contents permission %q: the state ref cannot be pushed", got)
	}
	// zen apply and zen apply --preview get the signer's and the steps'
	// secrets; no other step gets any.
	want := map[string]any{
		"ZEN_SECRET_RELEASE_KEY": "${{ secrets.ZEN_SECRET_RELEASE_KEY }}",
		"COSIGN_PASSWORD":        "${{ secrets.COSIGN_PASSWORD }}",
		"ZEN_SECRET_HF_TOKEN":    "${{ secrets.ZEN_SECRET_HF_TOKEN }}",
		"ZEN_SECRET_DB_PASSWORD": "${{ secrets.ZEN_SECRET_DB_PASSWORD }}",
	}
	for _, js := range [][2]string{{"apply", "zen apply"}, {"preview", "zen preview"}} {
		env, _ := step(t, v, js[0], js[1])["env"].(map[string]any)
		if len(env) != len(want) {
			t.Errorf("%s's env: %v, want %v", js[1], env, want)
		}
		for k, w := range want {
			if env[k] != w {
				t.Errorf("%s's env %s = %v, want %v", js[1], k, env[k], w)
			}
		}
	}
	for _, job := range []string{"preview", "apply"} {
		for _, s := range get(t, v, "jobs", job, "steps").([]any) {
			m := s.(map[string]any)
			if m["name"] == "zen preview" || m["name"] == "zen apply" {
				continue
			}
			if env, _ := m["env"].(map[string]any); env != nil {
				for k := range env {
					if k != "GH_TOKEN" {
						t.Errorf("step %v of %s reads %s", m["name"], job, k)
					}
				}
			}
			if r, _ := m["run"].(string); strings.Contains(r, "secrets.") {
				t.Errorf("step %v of %s reads a secret:\n%s", m["name"], job, r)
			}
		}
	}
	h := head(out)
	for _, want := range []string{
		"for stack ci.team-1",
		"registry repository registry.example.com/ml/demo",
		"sign them with the cosign key in secret release.key",
		"#   REGISTRY_USER           a user that can push to registry.example.com\n",
		"#   ZEN_SECRET_RELEASE_KEY  the signer's private key (secret release.key)",
		"#   COSIGN_PASSWORD ",
		"#   ZEN_SECRET_DB_PASSWORD  secret db-password, read by step demo.evaluate\n",
		"#   ZEN_SECRET_HF_TOKEN     secret hf_token, read by steps demo.evaluate,\n#                           demo.train\n",
		"A preview runs steps and pushes their outputs, so it reads the secrets\n# apply reads.",
		"A pull request from a fork gets no secrets",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("head lacks %q:\n%s", want, h)
		}
	}
	for _, l := range strings.Split(h, "\n") {
		if len([]rune(l)) > 80 {
			t.Errorf("head line longer than 80: %q", l)
		}
	}
	var login int
	for _, job := range []string{"preview", "apply"} {
		for _, s := range get(t, v, "jobs", job, "steps").([]any) {
			if s.(map[string]any)["uses"] == "docker/login-action@v3" {
				login++
				if r := get(t, s, "with", "registry"); r != "registry.example.com" {
					t.Errorf("%s logs in to %v", job, r)
				}
			}
		}
	}
	if login != 2 {
		t.Errorf("%d docker logins, want one a job", login)
	}
}

// script is a GitLab job's script, each entry a string (a line that
// YAML reads as a mapping, `a: b`, is not one).
func script(t *testing.T, v map[string]any, job, key string) []string {
	t.Helper()
	var out []string
	for _, l := range get(t, v, job, key).([]any) {
		s, ok := l.(string)
		if !ok {
			t.Fatalf("%s: %s: an entry is not a string: %v", job, key, l)
		}
		out = append(out, s)
	}
	return out
}

func TestGitLabPipeline(t *testing.T) {
	out, v := render(t, "gitlab", "ci.team-1")
	if got := get(t, v, "variables", "ZEN_STACK"); got != "ci.team-1" {
		t.Errorf("ZEN_STACK %v", got)
	}
	preview := strings.Join(script(t, v, "zen preview", "script"), "\n")
	for _, want := range []string{
		`note="$(mktemp)"; plots="$(mktemp -d)"`,
		`printf '<!-- zen plan -->\n' > "$note"`,
		`for v in ZEN_SECRET_RELEASE_KEY ZEN_SECRET_DB_PASSWORD ZEN_SECRET_HF_TOKEN; do`,
		`zen apply --preview --branch "$CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"; preview=$?`,
		`zen plan --preview --branch "$CI_MERGE_REQUEST_SOURCE_BRANCH_NAME" --output markdown`,
		`--plots "$plots" --plots-url "${CI_JOB_URL}/artifacts/file/zen-plots" >> "$note"`,
		`zen plan --output markdown >> "$note"`,
		`cp -R "$plots" zen-plots`,
		`"${notes}?sort=asc&order_by=created_at&per_page=100"`,
		`method=PUT; url="${notes}/${id}"`,
		`--data-urlencode "body@${note}"`,
		`if [ "$preview" -ne 0 ]; then`,
	} {
		if !strings.Contains(preview, want) {
			t.Errorf("preview job lacks %q:\n%s", want, preview)
		}
	}
	if strings.Contains(preview, "> plan.md") || strings.Contains(preview, "--plots zen-plots") {
		t.Errorf("preview job writes into the work tree before zen is done:\n%s", preview)
	}
	if got := get(t, v, "zen preview", "artifacts", "paths").([]any); len(got) != 1 || got[0] != "zen-plots/" {
		t.Errorf("preview artifacts %v", got)
	}
	if got := get(t, v, "zen preview", "artifacts", "when"); got != "always" {
		t.Errorf("preview artifacts when %v: a failed preview's plots are lost", got)
	}
	rule := get(t, v, "zen apply", "rules").([]any)[0]
	if got := get(t, rule, "if"); got != "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" {
		t.Errorf("apply rule %q", got)
	}
	if got := get(t, v, "zen apply", "resource_group"); got != "zen-apply" {
		t.Errorf("apply resource_group %q", got)
	}
	if got := script(t, v, "zen apply", "script"); strings.Join(got, "\n") != "zen apply\nzen preview clean --gone" {
		t.Errorf("apply script %q", got)
	}
	script(t, v, "zen apply", "after_script")
	before := strings.Join(script(t, v, ".zen", "before_script"), "\n")
	if !strings.Contains(before, `printf '{"auths":{"%s":{"auth":"%s"}}}' 'registry.example.com' `) {
		t.Errorf("before_script does not log in to the registry:\n%s", before)
	}
	h := head(out)
	for _, want := range []string{"#   ZEN_GITLAB_TOKEN ", "type File", "#   ZEN_SECRET_HF_TOKEN ",
		"credentials: leave them unprotected.", "Marked protected, they reach\n# only pipelines of protected branches"} {
		if !strings.Contains(h, want) {
			t.Errorf("head lacks %q:\n%s", want, h)
		}
	}
	for _, l := range strings.Split(h, "\n") {
		if len([]rune(l)) > 80 {
			t.Errorf("head line longer than 80: %q", l)
		}
	}
}

// The note is found by its marker in GitLab's JSON, which may escape the
// marker's <: the pattern the pipeline greps for finds zen's note, and
// no other.
func TestGitLabNoteMarker(t *testing.T) {
	_, v := render(t, "gitlab", "ci.team-1")
	var pattern string
	for _, l := range script(t, v, "zen preview", "script") {
		if rest, ok := strings.CutPrefix(l, `id="$(grep -oE '`); ok {
			pattern, _, _ = strings.Cut(rest, "'")
		}
	}
	re, err := regexp.Compile(pattern)
	if err != nil || pattern == "" {
		t.Fatalf("the note's pattern %q: %v", pattern, err)
	}
	for list, want := range map[string]string{
		`[{"id":1,"type":null,"body":"added 1 commit","author":{"id":2}},{"id":2,"type":null,"body":"\u003c!-- zen plan --\u003e\n### Plan"}]`: `{"id":2,`,
		`[{"id":9,"body":"<!-- zen plan -->\n### Plan","author":{"id":7}}]`:                                                                    `{"id":9,`,
		`[{"id":3,"type":"DiscussionNote","body":"\u003c!-- zen plan --\u003e"}]`:                                                              `{"id":3,`,
		`[{"id":4,"type":null,"body":"see \u003c!-- zen plan --\u003e"},{"id":5,"type":null,"body":"\"id\":6,\"body\":\"\u003c!-- zen plan"}]`: "",
	} {
		got := re.FindString(list)
		if want == "" && got != "" || want != "" && !strings.HasPrefix(got, want) {
			t.Errorf("in %s: found %q, want %q", list, got, want)
		}
	}
}

// A stack with signer none is written, and the head says its versions are
// unsigned; it passes no signer secrets.
func TestCIUnsigned(t *testing.T) {
	for _, system := range CISystems {
		out, _ := render(t, system, "unsigned")
		h := head(out)
		if !strings.Contains(h, "UNSIGNED") {
			t.Errorf("%s: head does not say the versions are unsigned:\n%s", system, h)
		}
		if strings.Contains(out, "COSIGN_PASSWORD") || strings.Contains(out, "sign them") {
			t.Errorf("%s: an unsigned stack's workflow mentions a signer:\n%s", system, out)
		}
	}
}

// Docker Hub is docker.io to docker login, and its own key in config.json.
func TestCIDockerHub(t *testing.T) {
	out, v := render(t, "github", "hub")
	for _, s := range get(t, v, "jobs", "preview", "steps").([]any) {
		if s.(map[string]any)["uses"] == "docker/login-action@v3" {
			if r := get(t, s, "with", "registry"); r != "docker.io" {
				t.Errorf("logs in to %v", r)
			}
		}
	}
	if !strings.Contains(out, "registry repository acme/models") {
		t.Errorf("head does not name the repository:\n%s", head(out))
	}
	out, _ = render(t, "gitlab", "hub")
	if !strings.Contains(out, `'https://index.docker.io/v1/'`) {
		t.Errorf("gitlab's docker config is not Docker Hub's:\n%s", out)
	}
}

// Stacks that cannot apply in CI are refused with what to declare.
func TestCIRefused(t *testing.T) {
	cfg := ciConfig()
	cases := []struct {
		stack string
		want  string
	}{
		{"local", `stack local cannot apply in CI: its artifacts go to an OCI layout folder (.zen/store), which is thrown away with the CI runner, and it signs with the repository's key pair, whose private key (.zen/keys/cosign.key) a CI clone does not have. Declare artifact_store: {flavor: "oci", repository: "REGISTRY/PATH"} and signer: {flavor: "cosign", key: {secret: "cosign_key"}, public_key: "cosign.pub"} (or signer: {flavor: "none"} for unsigned versions) on it or on another stack, then run zen init --ci github --stack NAME`},
		{"shared", `stack shared cannot apply in CI: it signs with the repository's key pair, whose private key (.zen/keys/cosign.key) a CI clone does not have. Declare signer: {flavor: "cosign", key: {secret: "cosign_key"}, public_key: "cosign.pub"} (or signer: {flavor: "none"} for unsigned versions) on it or on another stack, then run zen init --ci github --stack NAME`},
		{"keyless", `stack keyless cannot apply in CI: its cosign signer names no key secret. Declare signer: {flavor: "cosign", key: {secret: "cosign_key"}, public_key: "cosign.pub"} (or signer: {flavor: "none"} for unsigned versions) on it or on another stack, then run zen init --ci github --stack NAME`},
		{"layout-ok", `stack layout-ok cannot apply in CI: its artifacts go to an OCI layout folder (.zen/store), which is thrown away with the CI runner. Declare artifact_store: {flavor: "oci", repository: "REGISTRY/PATH"} on it or on another stack, then run zen init --ci github --stack NAME`},
		{"bad-remote", `stack bad-remote cannot apply in CI: its artifact store's repository "Not A Repo" is not a registry repository`},
	}
	for _, c := range cases {
		_, err := NewCIStack("github", cfg, cfg.Stacks[c.stack])
		var ce *CIError
		if !errors.As(err, &ce) {
			t.Errorf("%s: err %v, want a CIError", c.stack, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s:\n got %s\nwant %s", c.stack, err, c.want)
		}
	}
	if _, err := NewCIStack("jenkins", cfg, cfg.Stacks["ci.team-1"]); err == nil || err.Error() != `--ci "jenkins": want github or gitlab` {
		t.Errorf("jenkins: %v", err)
	}
}
