package examples

import (
	"errors"
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

func TestGitHubWorkflow(t *testing.T) {
	out, v := render(t, "github", "ci.team-1")
	if got := get(t, v, "env", "ZEN_STACK"); got != "ci.team-1" {
		t.Errorf("ZEN_STACK %v", got)
	}
	if got := get(t, v, "jobs", "plan", "if"); got != "github.event_name == 'pull_request'" {
		t.Errorf("plan runs if %q", got)
	}
	plan := runs(t, v, "plan")
	for _, want := range []string{`zen plan --detailed-exitcode --output markdown > "$RUNNER_TEMP/plan.md"`, `[ "$code" -ne 1 ]`, `gh pr comment "${{ github.event.pull_request.number }}" --body-file "$RUNNER_TEMP/plan.md"`} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan job lacks %q:\n%s", want, plan)
		}
	}
	if strings.Contains(plan, "> plan.md") {
		t.Errorf("plan job writes the plan into the work tree:\n%s", plan)
	}
	if got := get(t, v, "jobs", "apply", "if"); got != "github.event_name == 'push' && github.ref_name == github.event.repository.default_branch" {
		t.Errorf("apply runs if %q", got)
	}
	if got := get(t, v, "jobs", "apply", "concurrency", "group"); got != "zen-apply" {
		t.Errorf("apply concurrency %q", got)
	}
	if got := get(t, v, "permissions", "contents"); got != "write" {
		t.Errorf("contents permission %q: the state ref cannot be pushed", got)
	}
	// The apply step gets the signer's and the steps' secrets; the plan
	// job none of them.
	var env map[string]any
	for _, s := range get(t, v, "jobs", "apply", "steps").([]any) {
		if s.(map[string]any)["run"] == "zen apply" {
			env, _ = s.(map[string]any)["env"].(map[string]any)
		}
	}
	want := map[string]any{
		"ZEN_SECRET_RELEASE_KEY": "${{ secrets.ZEN_SECRET_RELEASE_KEY }}",
		"COSIGN_PASSWORD":        "${{ secrets.COSIGN_PASSWORD }}",
		"ZEN_SECRET_HF_TOKEN":    "${{ secrets.ZEN_SECRET_HF_TOKEN }}",
		"ZEN_SECRET_DB_PASSWORD": "${{ secrets.ZEN_SECRET_DB_PASSWORD }}",
	}
	if len(env) != len(want) {
		t.Errorf("zen apply's env: %v, want %v", env, want)
	}
	for k, w := range want {
		if env[k] != w {
			t.Errorf("zen apply's env %s = %v, want %v", k, env[k], w)
		}
	}
	if strings.Contains(plan, "ZEN_SECRET_") || strings.Contains(plan, "COSIGN_PASSWORD") {
		t.Errorf("the plan job reads apply's secrets:\n%s", plan)
	}
	h := head(out)
	for _, want := range []string{
		"for stack ci.team-1",
		"registry repository registry.example.com/ml/demo",
		"signs them with the cosign key in secret release.key",
		"#   REGISTRY_USER           a user that can push to registry.example.com\n",
		"#   ZEN_SECRET_RELEASE_KEY  the signer's private key (secret release.key)",
		"#   COSIGN_PASSWORD ",
		"#   ZEN_SECRET_DB_PASSWORD  secret db-password, read by step demo.evaluate\n",
		"#   ZEN_SECRET_HF_TOKEN     secret hf_token, read by steps demo.evaluate,\n#                           demo.train\n",
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
	for _, job := range []string{"plan", "apply"} {
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

func TestGitLabPipeline(t *testing.T) {
	out, v := render(t, "gitlab", "ci.team-1")
	if got := get(t, v, "variables", "ZEN_STACK"); got != "ci.team-1" {
		t.Errorf("ZEN_STACK %v", got)
	}
	var plan []string
	for _, l := range get(t, v, "zen plan", "script").([]any) {
		plan = append(plan, l.(string))
	}
	joined := strings.Join(plan, "\n")
	for _, want := range []string{`plan="$(mktemp)"`, `zen plan --detailed-exitcode --output markdown > "$plan"`, `test "$code" -ne 1`, `--data-urlencode "body@${plan}"`, "/notes"} {
		if !strings.Contains(joined, want) {
			t.Errorf("plan job lacks %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "> plan.md") || get(t, v, "zen plan", "artifacts") != nil {
		t.Errorf("plan job keeps the plan in the work tree:\n%s", joined)
	}
	rule := get(t, v, "zen apply", "rules").([]any)[0]
	if got := get(t, rule, "if"); got != "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" {
		t.Errorf("apply rule %q", got)
	}
	if got := get(t, v, "zen apply", "resource_group"); got != "zen-apply" {
		t.Errorf("apply resource_group %q", got)
	}
	var before []string
	for _, l := range get(t, v, ".zen", "before_script").([]any) {
		before = append(before, l.(string))
	}
	if !strings.Contains(strings.Join(before, "\n"), `printf '{"auths":{"%s":{"auth":"%s"}}}' 'registry.example.com' `) {
		t.Errorf("before_script does not log in to the registry:\n%s", strings.Join(before, "\n"))
	}
	h := head(out)
	for _, want := range []string{"#   ZEN_GITLAB_TOKEN ", "type File", "#   ZEN_SECRET_HF_TOKEN ", "mark the\n# others protected"} {
		if !strings.Contains(h, want) {
			t.Errorf("head lacks %q:\n%s", want, h)
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
		if strings.Contains(out, "COSIGN_PASSWORD") || strings.Contains(out, "signs them") {
			t.Errorf("%s: an unsigned stack's workflow mentions a signer:\n%s", system, out)
		}
	}
}

// Docker Hub is docker.io to docker login, and its own key in config.json.
func TestCIDockerHub(t *testing.T) {
	out, v := render(t, "github", "hub")
	for _, s := range get(t, v, "jobs", "plan", "steps").([]any) {
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
