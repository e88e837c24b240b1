package plan

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// TestPlanDeployments compares what each deployment serves with the
// version its stage holds once the plan is applied.
func TestPlanDeployments(t *testing.T) {
	a, b := "sha256:"+strings.Repeat("aa", 32), "sha256:"+strings.Repeat("bb", 32)
	serve := &schema.Serve{Run: []string{"python3", "serve.py"}, Health: "/healthz"}
	cfg := &schema.Config{
		Root: t.TempDir(),
		Models: map[string]*schema.Model{"scorer": {
			Name:     "scorer",
			Versions: map[string]json.RawMessage{"1.0.0": json.RawMessage(`{}`), "1.1.0": json.RawMessage(`{}`), "1.2.0": json.RawMessage(`{}`)},
			Stages:   map[string]string{"production": "1.0.0", "staging": "1.1.0", "canary": "1.2.0", "dev": "1.0.0"},
			Serve:    serve,
		}},
		Deployments: map[string]*schema.Deployment{},
	}
	for _, d := range []*schema.Deployment{
		{Name: "fresh", Model: "scorer", Stage: "production"},
		{Name: "same", Model: "scorer", Stage: "production"},
		{Name: "exited", Model: "scorer", Stage: "production"},
		{Name: "sick", Model: "scorer", Stage: "production"},
		{Name: "respec", Model: "scorer", Stage: "production", Port: 8500},
		{Name: "moves", Model: "scorer", Stage: "staging"},
		{Name: "pending", Model: "scorer", Stage: "canary"},
	} {
		cfg.Deployments[d.Name] = d
	}
	spec := func(name string) string { return schema.ServeSpec(cfg.Deployments[name], serve, "", nil) }
	rec := &modelState{
		versions: map[string]*state.ModelVersion{
			"scorer/1.0.0": {ModelVersion: "1.0.0", Digest: a},
			"scorer/1.1.0": {ModelVersion: "1.1.0", Digest: b},
		},
		stages: map[string]*state.Stages{"scorer": {Model: "scorer", Stages: map[string]*state.Stage{
			"production": {ModelVersion: "1.0.0", Digest: a},
			"staging":    {ModelVersion: "1.0.0", Digest: a},
		}}},
	}
	p := &Plan{Models: []*ModelChange{
		{Model: "scorer", Version: "1.2.0", Action: Create},
		{Model: "scorer", Version: "1.1.0", Stage: "staging", Action: Run, From: "1.0.0"},
		{Model: "scorer", Version: "1.2.0", Stage: "canary", Action: Create},
	}}
	served := map[string]*Served{
		"same":    {Version: "1.0.0", Digest: a, Spec: spec("same"), State: "running"},
		"exited":  {Version: "1.0.0", Digest: a, Spec: spec("exited"), State: "exited"},
		"sick":    {Version: "1.0.0", Digest: a, Spec: spec("sick"), State: "unhealthy"},
		"respec":  {Version: "1.0.0", Digest: a, Spec: spec("same"), State: "running"},
		"moves":   {Version: "1.0.0", Digest: a, Spec: spec("moves"), State: "running", URL: "http://127.0.0.1:1"},
		"pending": {Version: "1.1.0", Digest: b, Spec: spec("pending"), State: "running"},
		"gone":    {Version: "1.0.0", Digest: a, Spec: "x", State: "running", URL: "http://127.0.0.1:2"},
	}
	changes, err := planDeployments(context.Background(), cfg, p, rec, schema.Component{Flavor: "local"}, served, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*DeploymentChange{}
	var order []string
	for _, c := range changes {
		got[c.Name] = c
		order = append(order, c.Name)
	}
	if strings.Join(order, ",") != "exited,fresh,moves,pending,respec,sick,gone" {
		t.Fatalf("changes %s", strings.Join(order, ","))
	}
	for _, w := range []struct {
		name          string
		action        Action
		version, dgst string
		pending       bool
		reason, fromV string
	}{
		{"fresh", Create, "1.0.0", a, false, "not running", ""},
		{"exited", Create, "1.0.0", a, false, "its process exited", "1.0.0"},
		{"sick", Run, "1.0.0", a, false, "it does not answer its health check", "1.0.0"},
		{"respec", Run, "1.0.0", a, false, "how it is served changed", "1.0.0"},
		{"moves", Run, "1.1.0", b, false, "the stage holds another version", "1.0.0"},
		{"pending", Run, "1.2.0", "", true, "the stage holds another version", "1.1.0"},
		{"gone", Delete, "", "", false, "no longer declared", "1.0.0"},
	} {
		c := got[w.name]
		if c.Action != w.action || c.Version != w.version || c.Digest != w.dgst || c.Pending != w.pending || c.Reason != w.reason || c.FromVersion != w.fromV || c.Deployer != "local" {
			t.Errorf("%s: %+v", w.name, c)
		}
	}
	if got["moves"].URL != "http://127.0.0.1:1" || got["moves"].FromDigest != a {
		t.Errorf("moves: %+v", got["moves"])
	}

	// A stage that holds nothing, and whose move is refused, is an error
	// at the deployment's stage.
	cfg.Deployments = map[string]*schema.Deployment{"c": {Name: "c", Model: "scorer", Stage: "canary"}}
	p.Models[2].Refused = "gate failed"
	_, err = planDeployments(context.Background(), cfg, p, rec, schema.Component{Flavor: "local"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "deployments.c.stage: stage canary of model scorer holds no version (its move to 1.2.0 is refused: gate failed)") {
		t.Fatalf("error %v", err)
	}
	// A stage that holds a version keeps serving it when its move is
	// refused.
	p.Models[1].Refused = "gate failed"
	cfg.Deployments = map[string]*schema.Deployment{"moves": {Name: "moves", Model: "scorer", Stage: "staging"}}
	changes, err = planDeployments(context.Background(), cfg, p, rec, schema.Component{Flavor: "local"}, map[string]*Served{"moves": served["moves"]}, nil)
	if err != nil || len(changes) != 0 {
		t.Fatalf("%v %v", changes, err)
	}
}
