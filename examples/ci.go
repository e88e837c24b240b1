package examples

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/zen-dev/zen/schema"
)

// CISystems are the CI systems `zen init --ci` writes a workflow for.
var CISystems = []string{"github", "gitlab"}

// ciFiles maps a CI system to its template in CI and the file it is
// written to in the repository.
var ciFiles = map[string][2]string{
	"github": {"ci/github/zen.yml.tmpl", ".github/workflows/zen.yml"},
	"gitlab": {"ci/gitlab/.gitlab-ci.yml.tmpl", ".gitlab-ci.yml"},
}

// CIPath is where the workflow of system goes in a repository, slash
// separated; "" for a system zen does not know.
func CIPath(system string) string {
	return ciFiles[system][1]
}

// CIStack is what a CI workflow says of the stack it plans and applies on.
type CIStack struct {
	Name       string // the stack, set as ZEN_STACK
	Repository string // its artifact store's registry repository
	Registry   string // that repository's registry, to log in to
	DockerAuth string // the registry's key in a docker config.json
	Signed     bool   // false for signer: {flavor: "none"}
	KeySecret  string // the signer's key secret, when Signed
	PublicKey  string // the signer's public_key file, "" when not declared

	// Secrets are all the secrets the workflow needs, as the file's head
	// lists them; ApplyEnv the ones zen apply and zen apply --preview
	// read: the signer's and the steps'. PreviewNeeds are those without
	// which a preview cannot run: ApplyEnv but the key's password, which
	// is empty for a key made without one.
	Secrets      []CISecret
	ApplyEnv     []CISecret
	PreviewNeeds []CISecret
}

// CISecret is a secret a CI workflow reads.
type CISecret struct {
	Env string // the secret's name in CI, which is also its variable in the job
	Use string // what it is for
}

// CIError is a stack that cannot plan and apply in CI, and what to declare.
type CIError struct {
	System, Stack string
	Problems      []string // why not, each a clause
	Declare       []string // the CUE fields that would make it work
}

func (e *CIError) Error() string {
	return fmt.Sprintf("stack %s cannot apply in CI: %s. Declare %s on it or on another stack, then run zen init --ci %s --stack NAME",
		e.Stack, strings.Join(e.Problems, ", and "), strings.Join(e.Declare, " and "), e.System)
}

// The fields a CI stack declares, as the errors show them.
const (
	declareStore  = `artifact_store: {flavor: "oci", repository: "REGISTRY/PATH"}`
	declareSigner = `signer: {flavor: "cosign", key: {secret: "cosign_key"}, public_key: "cosign.pub"} (or signer: {flavor: "none"} for unsigned versions)`
)

// NewCIStack checks that st can plan and apply in a CI job, a fresh clone
// on a runner that is thrown away afterwards, and returns what its
// workflow says of it. A stack cannot when its artifacts go to an OCI
// layout folder, which is thrown away with the runner, or when it signs
// with the repository's key pair, whose private key (.zen/keys) is in no
// clone but the one that made it.
func NewCIStack(system string, cfg *schema.Config, st *schema.Stack) (*CIStack, error) {
	if _, ok := ciFiles[system]; !ok {
		return nil, fmt.Errorf("--ci %q: want %s", system, strings.Join(CISystems, " or "))
	}
	cs := &CIStack{Name: st.Name}
	bad := &CIError{System: system, Stack: st.Name}
	switch st.ArtifactStore.Flavor {
	case "oci":
		cs.Repository = st.ArtifactStore.String("repository")
		repo, err := name.NewRepository(cs.Repository)
		if err != nil {
			bad.Problems = append(bad.Problems, fmt.Sprintf("its artifact store's repository %q is not a registry repository (%v)", cs.Repository, err))
			bad.Declare = append(bad.Declare, declareStore)
			break
		}
		cs.Registry, cs.DockerAuth = repo.RegistryStr(), repo.RegistryStr()
		if cs.Registry == name.DefaultRegistry {
			// Docker Hub: docker login's name, and its key in config.json.
			cs.Registry, cs.DockerAuth = "docker.io", "https://index.docker.io/v1/"
		}
	default:
		p := st.ArtifactStore.String("path")
		if p == "" {
			p = ".zen/store"
		}
		bad.Problems = append(bad.Problems, fmt.Sprintf("its artifacts go to an OCI layout folder (%s), which is thrown away with the CI runner", p))
		bad.Declare = append(bad.Declare, declareStore)
	}
	flavor, _ := st.Signer["flavor"].(string)
	switch flavor {
	case "none":
	case "cosign":
		key, _ := st.Signer["key"].(map[string]any)
		cs.KeySecret, _ = key["secret"].(string)
		cs.PublicKey, _ = st.Signer["public_key"].(string)
		cs.Signed = true
		if cs.KeySecret == "" {
			bad.Problems = append(bad.Problems, "its cosign signer names no key secret")
			bad.Declare = append(bad.Declare, declareSigner)
		}
	default:
		bad.Problems = append(bad.Problems, "it signs with the repository's key pair, whose private key (.zen/keys/cosign.key) a CI clone does not have")
		bad.Declare = append(bad.Declare, declareSigner)
	}
	if len(bad.Problems) > 0 {
		return nil, bad
	}

	if system == "gitlab" {
		cs.Secrets = append(cs.Secrets, CISecret{"ZEN_GITLAB_TOKEN", "a project access token with the api and write_repository scopes: it writes the note and pushes the state and the previews"})
	}
	cs.Secrets = append(cs.Secrets,
		CISecret{"REGISTRY_USER", "a user that can push to " + cs.Registry},
		CISecret{"REGISTRY_PASSWORD", "its password or token"})
	if cs.Signed {
		keyUse := fmt.Sprintf("the signer's private key (secret %s): the PEM of a key from zen keys generate", cs.KeySecret)
		if system == "gitlab" {
			keyUse += ", as a variable of type File"
		}
		key := CISecret{schema.SecretEnv(cs.KeySecret), keyUse}
		pw := CISecret{"COSIGN_PASSWORD", "that key's password (leave it out for a key made with COSIGN_PASSWORD empty)"}
		cs.Secrets = append(cs.Secrets, key, pw)
		cs.ApplyEnv = append(cs.ApplyEnv, key, pw)
		cs.PreviewNeeds = append(cs.PreviewNeeds, key)
	}
	for _, s := range stepSecrets(cfg) {
		if cs.Signed && s.Env == schema.SecretEnv(cs.KeySecret) {
			continue
		}
		cs.Secrets = append(cs.Secrets, s)
		cs.ApplyEnv = append(cs.ApplyEnv, s)
		cs.PreviewNeeds = append(cs.PreviewNeeds, s)
	}
	return cs, nil
}

// stepSecrets lists the secrets the steps of cfg read, one per variable,
// sorted, each naming the steps that read it.
func stepSecrets(cfg *schema.Config) []CISecret {
	names := map[string]string{}   // variable → secret
	steps := map[string][]string{} // variable → pipeline.step
	for _, pn := range cfg.PipelineNames() {
		p := cfg.Pipelines[pn]
		for _, sn := range slices.Sorted(maps.Keys(p.Steps)) {
			for _, ev := range p.Steps[sn].Env {
				if ev.Secret == "" {
					continue
				}
				env := schema.SecretEnv(ev.Secret)
				names[env] = ev.Secret
				if s := pn + "." + sn; !slices.Contains(steps[env], s) {
					steps[env] = append(steps[env], s)
				}
			}
		}
	}
	var out []CISecret
	for _, env := range slices.Sorted(maps.Keys(names)) {
		what := "step"
		if len(steps[env]) > 1 {
			what = "steps"
		}
		out = append(out, CISecret{env, fmt.Sprintf("secret %s, read by %s %s", names[env], what, strings.Join(steps[env], ", "))})
	}
	return out
}

// RenderCI renders the workflow of system for the stack.
func RenderCI(system string, cs *CIStack) ([]byte, error) {
	f, ok := ciFiles[system]
	if !ok {
		return nil, fmt.Errorf("--ci %q: want %s", system, strings.Join(CISystems, " or "))
	}
	src, err := CI.ReadFile(f[0])
	if err != nil {
		return nil, err
	}
	// [[ ]]: GitHub's expressions are ${{ }}.
	t, err := template.New(f[0]).Delims("[[", "]]").Option("missingkey=error").Funcs(template.FuncMap{
		"q":      yamlQuote,
		"shq":    shellQuote,
		"secret": secretLine,
	}).Parse(string(src))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, cs); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// yamlQuote quotes s as a YAML double-quoted scalar (JSON's string syntax
// is YAML's).
func yamlQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// shellQuote quotes s as one POSIX shell word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// secretLine is a secret's line in a workflow's head, a YAML comment
// wrapped at 78 columns: its name, then what it is for.
func secretLine(s CISecret) string {
	line := fmt.Sprintf("#   %-23s", s.Env)
	cont := "#" + strings.Repeat(" ", len(line)-1)
	var b strings.Builder
	for i, w := range strings.Fields(s.Use) {
		if i > 0 && len(line)+1+len(w) > 78 {
			b.WriteString(line + "\n")
			line = cont
		}
		line += " " + w
	}
	b.WriteString(line)
	return b.String()
}
