package render

import (
	"strings"
	"testing"

	"github.com/zen-dev/zen/plan"
)

func TestDeploymentLine(t *testing.T) {
	a, b := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	for _, tc := range []struct {
		c    *plan.DeploymentChange
		want string
	}{
		{&plan.DeploymentChange{Name: "api", Model: "fraud", Stage: "production", Action: plan.Create, Version: "1.0.0", Digest: a, Reason: "not running"},
			"+ deployment api fraud@production → 1.0.0 (sha256:aaaaaaaaaaaa): not running"},
		{&plan.DeploymentChange{Name: "api", Model: "fraud", Stage: "production", Action: plan.Run, Version: "1.1.0", Digest: b, FromVersion: "1.0.0", FromDigest: a, Reason: "the stage holds another version"},
			"~ deployment api fraud@production 1.0.0 (sha256:aaaaaaaaaaaa) → 1.1.0 (sha256:bbbbbbbbbbbb): the stage holds another version"},
		{&plan.DeploymentChange{Name: "api", Model: "fraud", Stage: "production", Action: plan.Run, Version: "1.1.0", Pending: true, FromVersion: "1.0.0", FromDigest: a, Reason: "the stage holds another version",
			Image: &plan.Image{Declared: "reg/base:1", Pinned: "reg/base@" + b}},
			"~ deployment api fraud@production 1.0.0 (sha256:aaaaaaaaaaaa) → 1.1.0 (made by this apply): the stage holds another version; image reg/base:1 → " + b},
		{&plan.DeploymentChange{Name: "old", Action: plan.Delete, FromVersion: "1.0.0", FromDigest: a, URL: "http://127.0.0.1:8500", Reason: "no longer declared"},
			"- deployment old 1.0.0 (sha256:aaaaaaaaaaaa) at http://127.0.0.1:8500: no longer declared"},
	} {
		if got := DeploymentLine(tc.c, Style{}); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
	p := &plan.Plan{Deployments: []*plan.DeploymentChange{{Name: "api", Action: plan.Create}}}
	if got := Summary(p); got != "Plan: 1 deployment to change; 0 steps cached, none to run." {
		t.Errorf("summary %q", got)
	}
	if p.StateChanges() || !p.Changes() {
		t.Error("a deployment is a change, and records nothing")
	}
}
