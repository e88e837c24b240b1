package schema

import (
	"strings"
	"testing"
	"time"
)

const served = `package zen

pipelines: p: steps: train: {
	run: ["sh", "train.sh"]
	outputs: model: {type: "model", model: "fraud"}
}
models: fraud: {
	versions: "1.0.0": {}
	stages: {production: "1.0.0", staging: "1.0.0"}
	serve: {run: ["python3", "serve.py"], health: "/healthz", start_timeout: "5s", env: MODE: "fast"}
}
models: plain: {versions: "1.0.0": {}, stages: production: "1.0.0"}
stacks: local: {orchestrator: flavor: "local", artifact_store: flavor: "oci-layout"}
stacks: ci: {orchestrator: flavor: "local", artifact_store: flavor: "oci-layout", model_deployer: flavor: "none"}
`

func TestDeployments(t *testing.T) {
	dir := write(t, map[string]string{"zen.cue": served + `deployments: {
	api: {model: "fraud", stage: "production", port: 8500}
	"api-staging": {model: "fraud", stage: "staging"}
}
`, "train.sh": "", "serve.py": ""})
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.DeploymentNames(); strings.Join(got, ",") != "api,api-staging" {
		t.Fatalf("deployments %v", got)
	}
	d := cfg.Deployments["api"]
	if d.Model != "fraud" || d.Stage != "production" || d.Port != 8500 {
		t.Fatalf("api %+v", d)
	}
	s := cfg.Models["fraud"].Serve
	if s == nil || s.Health != "/healthz" || s.StartTimeout != 5*time.Second || s.Env["MODE"] != "fast" || s.Run[1] != "serve.py" {
		t.Fatalf("serve %+v", s)
	}
	if cfg.Models["plain"].Serve != nil {
		t.Fatal("plain declares no serve")
	}
	if f := cfg.Stacks["local"].ModelDeployer.Flavor; f != "local" {
		t.Fatalf("default model_deployer %q, want local", f)
	}
	if f := cfg.Stacks["ci"].ModelDeployer.Flavor; f != "none" {
		t.Fatalf("ci model_deployer %q, want none", f)
	}
	// The spec changes with what is served, not with the deployment's name.
	a := ServeSpec(d, s, "", nil)
	if a != ServeSpec(&Deployment{Name: "other", Port: 8500}, s, "", nil) {
		t.Fatal("spec depends on the name")
	}
	if a == ServeSpec(&Deployment{Port: 8501}, s, "", nil) || a == ServeSpec(d, s, "img@sha256:00", nil) {
		t.Fatal("spec ignores the port or the image")
	}
}

func TestDeploymentErrors(t *testing.T) {
	for _, tc := range []struct{ name, cue, want string }{
		{"unknown model", `deployments: api: {model: "nope", stage: "production"}`,
			`zen.cue:16:20: deployments.api.model: no model "nope" in models (models: fraud, plain)`},
		{"no serve", `deployments: api: {model: "plain", stage: "production"}`,
			`zen.cue:16:20: deployments.api.model: model plain declares no serving command: add models.plain.serve: {run: [...]}`},
		{"unknown stage", `deployments: api: {model: "fraud", stage: "canary"}`,
			`zen.cue:16:36: deployments.api.stage: no stage "canary" in models.fraud.stages (stages: production, staging)`},
		{"same port", "deployments: {a: {model: \"fraud\", stage: \"production\", port: 9000}, b: {model: \"fraud\", stage: \"staging\", port: 9000}}",
			`deployments.b.port: port 9000 is deployment a's already`},
		{"bad name", `deployments: API: {model: "fraud", stage: "production"}`,
			`zen.cue:16:14: deployment name "API"`},
		{"bad port", `deployments: api: {model: "fraud", stage: "production", port: 70000}`,
			`deployments.api.port: invalid value 70000`},
		{"bad deployer", `stacks: local: model_deployer: flavor: "k8s"`,
			`stacks.local.model_deployer.flavor: unknown model deployer flavor "k8s" (known: gitops, local, none)`},
		{"gitops on a layout store", `stacks: local: model_deployer: {flavor: "gitops", repo: "../deploy.git", model_volume: "image"}`,
			`stacks.local.artifact_store.flavor: the gitops model deployer needs an oci artifact store`},
		{"gitops without zen image", `stacks: reg: {orchestrator: flavor: "local", artifact_store: {flavor: "oci", repository: "r.example/ml"}, model_deployer: {flavor: "gitops", repo: "../deploy.git"}}`,
			`zen.cue:16:107: stacks.reg.model_deployer.zen_image: model_volume init needs zen_image`},
		{"gitops zen image by tag", `stacks: reg: {orchestrator: flavor: "local", artifact_store: {flavor: "oci", repository: "r.example/ml"}, model_deployer: {flavor: "gitops", repo: "r", zen_image: "zen:1"}}`,
			`stacks.reg.model_deployer.zen_image: invalid value "zen:1"`},
		{"gitops bad kind", `stacks: reg: {orchestrator: flavor: "local", artifact_store: {flavor: "oci", repository: "r.example/ml"}, model_deployer: {flavor: "gitops", repo: "r", kind: "pod", model_volume: "image"}}`,
			`stacks.reg.model_deployer.kind`},
		{"gitops without repo", `stacks: reg: {orchestrator: flavor: "local", artifact_store: {flavor: "oci", repository: "r.example/ml"}, model_deployer: {flavor: "gitops", model_volume: "image"}}`,
			`stacks.reg.model_deployer.repo`},
		{"bad timeout", `models: plain: serve: {run: ["x"], start_timeout: "soon"}`,
			`zen.cue:16:36: models.plain.serve.start_timeout: invalid start_timeout "soon"`},
		{"bad health", `models: plain: serve: {run: ["x"], health: "healthz"}`,
			`models.plain.serve.health: invalid value "healthz"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := write(t, map[string]string{"zen.cue": served + "\n" + tc.cue + "\n", "train.sh": ""})
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}
