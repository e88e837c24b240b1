package plan

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// DeploymentChange is a deployment apply starts, moves to another version
// or serving command, or stops. A deployment that serves what it should
// is not listed.
type DeploymentChange struct {
	Name  string `json:"name"`
	Model string `json:"model"`
	Stage string `json:"stage"`
	// Deployer is the flavor of the stack's model_deployer.
	Deployer string `json:"deployer"`
	// Action is create (nothing serves it, or its process exited), run
	// (it serves another version, or otherwise), or delete (it is no
	// longer declared: apply stops it).
	Action Action `json:"action"`
	// Version and Digest are what it will serve: the version the stage
	// holds once this apply has moved it. Digest is "" for a version this
	// apply makes (Pending).
	Version string `json:"version,omitempty"`
	Digest  string `json:"digest,omitempty"`
	Pending bool   `json:"pending,omitempty"`
	// FromVersion and FromDigest are what it serves now, at URL.
	FromVersion string `json:"from_version,omitempty"`
	FromDigest  string `json:"from_digest,omitempty"`
	URL         string `json:"url,omitempty"`
	// Reason says why it changes, for people.
	Reason string `json:"reason"`
	// Spec is the digest of how it is served (schema.ServeSpec), and
	// Image the serving image, as declared and pinned.
	Spec  string `json:"spec,omitempty"`
	Image *Image `json:"image,omitempty"`
}

// Served is what a deployment serves now, as the stack's model deployer
// reports it.
type Served struct {
	Version, Digest, Spec, URL string
	// State is running (it answers its health check), unhealthy or
	// exited; or rendered, for manifests committed to a deploy
	// repository.
	State string
}

// planDeployments lists the deployments whose served version or spec is
// not the one the stage will hold after this apply. served reports what
// each deployment serves now, by name.
func planDeployments(ctx context.Context, cfg *schema.Config, p *Plan, rec Recorded, deployer schema.Component, served map[string]*Served, images func(context.Context, string) (string, error)) ([]*DeploymentChange, error) {
	mr, _ := rec.(ModelRecorded)
	var out []*DeploymentChange
	for _, name := range cfg.DeploymentNames() {
		d := cfg.Deployments[name]
		m := cfg.Models[d.Model]
		c := &DeploymentChange{Name: name, Model: d.Model, Stage: d.Stage, Deployer: deployer.Flavor}
		var err error
		if c.Version, c.Digest, c.Pending, err = desired(p, mr, d); err != nil {
			return nil, schema.At(cfg.Root, []string{"deployments", name, "stage"}, "%v", err)
		}
		pinned := ""
		if m.Serve.Image != "" && images != nil {
			if pinned, err = images(ctx, m.Serve.Image); err != nil {
				return nil, fmt.Errorf("deployment %s: image %s: %w", name, m.Serve.Image, err)
			}
			c.Image = &Image{Declared: m.Serve.Image, Pinned: pinned}
		}
		c.Spec = schema.ServeSpec(d, m.Serve, pinned, deployer.Settings)
		now := served[name]
		if now != nil {
			c.FromVersion, c.FromDigest, c.URL = now.Version, now.Digest, now.URL
		}
		switch {
		case now == nil && deployer.Flavor == "gitops":
			c.Action, c.Reason = Create, "not in the deploy repository"
		case now == nil:
			c.Action, c.Reason = Create, "not running"
		case now.State == "exited":
			c.Action, c.Reason = Create, "its process exited"
		case c.Pending || now.Digest != c.Digest:
			c.Action, c.Reason = Run, "the stage holds another version"
		case now.Spec != c.Spec:
			c.Action, c.Reason = Run, "how it is served changed"
		case now.State != "running" && now.State != "rendered":
			c.Action, c.Reason = Run, "it does not answer its health check"
		default:
			continue
		}
		out = append(out, c)
	}
	for _, name := range slices.Sorted(maps.Keys(served)) {
		if _, ok := cfg.Deployments[name]; ok {
			continue
		}
		s := served[name]
		out = append(out, &DeploymentChange{Name: name, Deployer: deployer.Flavor, Action: Delete,
			FromVersion: s.Version, FromDigest: s.Digest, URL: s.URL, Reason: "no longer declared"})
	}
	return out, nil
}

// desired is the version a deployment's stage holds once p is applied,
// and its digest: the version a stage move of p takes it to (pending when
// p makes that version), else the one the state ref records.
func desired(p *Plan, mr ModelRecorded, d *schema.Deployment) (version, digest string, pending bool, err error) {
	refused := ""
	for _, c := range p.Models {
		if c.IsVersion() || c.Model != d.Model || c.Stage != d.Stage || c.Action == Repair || c.Action == Delete {
			continue
		}
		if c.Refused != "" {
			refused = fmt.Sprintf(" (its move to %s is refused: %s)", c.Version, c.Refused)
			break
		}
		if mr != nil {
			mv, ok, err := mr.ModelVersion(d.Model, c.Version)
			if err != nil {
				return "", "", false, err
			}
			if ok {
				return c.Version, mv.Digest, false, nil
			}
		}
		return c.Version, "", true, nil
	}
	var st *state.Stages
	if mr != nil {
		if st, _, err = mr.Stages(d.Model); err != nil {
			return "", "", false, err
		}
	}
	if st == nil || st.Stages[d.Stage] == nil {
		return "", "", false, fmt.Errorf("stage %s of model %s holds no version%s: there is nothing to serve until a version is promoted to it", d.Stage, d.Model, refused)
	}
	s := st.Stages[d.Stage]
	return s.ModelVersion, s.Digest, false, nil
}
