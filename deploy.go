package zen

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zen-dev/zen/deploy"
	"github.com/zen-dev/zen/internal/workspace"
	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/registry/verify"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// LocalDeployments is the clone's local model deployer: the processes it
// serves deployments with, kept in .zen/deployments. A process is this
// machine's, so none of it is on the state ref.
func (p *Project) LocalDeployments(log io.Writer) *deploy.Local {
	return &deploy.Local{Dir: filepath.Join(p.ws.Root, workspace.DataDir, "deployments"), Log: log}
}

// deployer is the stack's model deployer, nil for one whose flavor is
// none. A stack that does not say serves with the local one.
func (p *Project) deployer(st *schema.Stack, log io.Writer) (deploy.Deployer, error) {
	switch st.ModelDeployer.Flavor {
	case "", "local":
		return p.LocalDeployments(log), nil
	case "gitops":
		return p.gitOps(st, log)
	}
	return nil, nil
}

// gitOps is the stack's gitops model deployer: its deploy repository,
// fetched into .zen/gitops/<hash>.git, and how it renders manifests,
// with the stack's public key for the init container to verify with.
func (p *Project) gitOps(st *schema.Stack, log io.Writer) (*deploy.GitOps, error) {
	c := st.ModelDeployer
	repo := c.String("repo")
	if isLocalPath(repo) && !filepath.IsAbs(repo) {
		repo = filepath.Join(p.ws.Root, filepath.FromSlash(repo))
	}
	branch := c.String("branch")
	sum := sha256.Sum256([]byte(repo + "\x00" + branch))
	replicas, _ := c.Settings["replicas"].(int64)
	if r, ok := c.Settings["replicas"].(float64); ok {
		replicas = int64(r)
	}
	g := &deploy.GitOps{
		Repo: repo, Branch: branch, Path: c.String("path"),
		Cache: filepath.Join(p.ws.Root, workspace.DataDir, "gitops", hex.EncodeToString(sum[:6])+".git"),
		Manifests: deploy.Manifests{
			Kind: c.String("kind"), Namespace: c.String("namespace"), Replicas: int(replicas),
			ModelVolume: c.String("model_volume"), ZenImage: c.String("zen_image"),
		},
		Author: p.state.Identity(),
		Log:    log,
	}
	g.Source, _ = p.ws.Head()
	if g.Manifests.ModelVolume != deploy.VolumeImage {
		v, _, _, err := p.PublicKey(st)
		if err != nil {
			return nil, err
		}
		if v != nil {
			if g.Manifests.Key, err = v.PEM(); err != nil {
				return nil, err
			}
		}
	}
	return g, nil
}

// requireServeImages refuses, on a stack whose model deployer is gitops,
// a deployed model whose serve.image is missing or a tag: a cluster runs
// the serving command in an image, and a deploy repository names it by
// digest, so that what runs changes only through a reviewed diff.
func (p *Project) requireServeImages(st *schema.Stack, cfg *schema.Config) error {
	if st.ModelDeployer.Flavor != "gitops" {
		return nil
	}
	for _, name := range cfg.DeploymentNames() {
		model := cfg.Deployments[name].Model
		m := cfg.Models[model]
		switch {
		case m == nil || m.Serve == nil:
		case m.Serve.Image == "":
			return schema.At(p.ws.Root, []string{"models", model, "serve"}, "deployment %s on stack %s (model_deployer gitops): a cluster runs the serving command in an image: declare serve.image, pinned by digest (name@sha256:…)", name, st.Name)
		case !ImagePinned(m.Serve.Image):
			return schema.At(p.ws.Root, []string{"models", model, "serve", "image"}, "%q is a tag: deployment %s on stack %s (model_deployer gitops) names its image by digest in the deploy repository: write it as name@sha256:…", m.Serve.Image, name, st.Name)
		}
	}
	return nil
}

// isLocalPath reports whether a git repository address is a path rather
// than a URL (scheme://…) or scp-like (host:path) address, as git tells
// them apart.
func isLocalPath(repo string) bool {
	if strings.Contains(repo, "://") {
		return false
	}
	colon := strings.IndexByte(repo, ':')
	return colon < 0 || strings.ContainsRune(repo[:colon], '/')
}

// servedBy turns what a deployer serves into what plan compares.
func servedBy(d deploy.Deployer) func(ctx context.Context) (map[string]*plan.Served, error) {
	return func(ctx context.Context) (map[string]*plan.Served, error) {
		list, err := d.List(ctx)
		if err != nil {
			return nil, err
		}
		out := map[string]*plan.Served{}
		for _, s := range list {
			out[s.Name] = &plan.Served{Version: s.Version, Digest: s.Digest, Spec: s.Spec, URL: s.URL, State: string(s.State)}
		}
		return out, nil
	}
}

// DeployError reports the deployments an apply could not start, move or
// stop. What the apply recorded stays recorded: a deployment is an effect
// of the state ref, which the next apply retries.
type DeployError struct {
	Errs []error
}

func (e *DeployError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the errors, for errors.Is and errors.As.
func (e *DeployError) Unwrap() []error { return e.Errs }

// applyDeployments serves what pl's deployments should serve, once the
// apply has recorded its stage moves: for each, the version its stage
// holds on the state ref now, verified with key (the stack's public key;
// nil on a stack that signs nothing) and pulled by digest. It returns a
// line a deployment changed, and a *DeployError for those it could not
// change; a deployment that fails keeps serving what it served.
func (p *Project) applyDeployments(ctx context.Context, pl *Planned, key *signature.Verifier, log io.Writer) ([]string, error) {
	if len(pl.Plan.Deployments) == 0 || pl.Plan.Preview != nil {
		return nil, nil
	}
	d, err := p.deployer(pl.Stack, log)
	if d == nil || err != nil {
		return nil, err
	}
	if err := ignoreDataDir(p.ws); err != nil {
		return nil, err
	}
	snap, err := p.state.Head()
	if err != nil {
		return nil, err
	}
	recs := state.Records{Snapshot: snap, Ref: p.state.Ref()}
	var done []string
	var errs []error
	for _, c := range pl.Plan.Deployments {
		if c.Action == plan.Delete {
			if err := d.Stop(ctx, c.Name); err != nil {
				errs = append(errs, fmt.Errorf("deployment %s: stop: %w", c.Name, err))
				continue
			}
			done = append(done, fmt.Sprintf("stopped deployment %s (no longer declared)", c.Name))
			continue
		}
		line, err := p.deployOne(ctx, pl, d, recs, key, c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if line != "" {
			done = append(done, line)
		}
	}
	if len(errs) > 0 {
		return done, &DeployError{Errs: errs}
	}
	return done, nil
}

// deployOne serves one deployment the version its stage holds in recs,
// unless it serves it already (a version this apply was to make, and
// did not).
func (p *Project) deployOne(ctx context.Context, pl *Planned, d deploy.Deployer, recs state.Records, key *signature.Verifier, c *plan.DeploymentChange) (string, error) {
	dep := pl.Config.Deployments[c.Name]
	serve := pl.Config.Models[dep.Model].Serve
	stages, _, err := recs.Stages(dep.Model)
	if err != nil {
		return "", err
	}
	if stages == nil || stages.Stages[dep.Stage] == nil {
		return "", fmt.Errorf("deployment %s: stage %s of model %s holds no version: nothing deployed", c.Name, dep.Stage, dep.Model)
	}
	stage := stages.Stages[dep.Stage]
	now, err := d.Status(ctx, c.Name)
	if err != nil {
		return "", err
	}
	if now.Serves(stage.Digest, c.Spec) {
		return "", nil
	}
	what := fmt.Sprintf("%s %s (%s)", dep.Model, stage.ModelVersion, stage.Digest)
	ms, ok := pl.Store.(registry.ModelStore)
	if !ok {
		return "", fmt.Errorf("deployment %s: artifact store %s holds no models", c.Name, pl.Store)
	}
	mv, ok, err := recs.ModelVersion(dep.Model, stage.ModelVersion)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("deployment %s: %s has no version record: nothing deployed", c.Name, what)
	}
	// The version is checked as a stage move checks it, here against the
	// stage's tag: the tag points at the recorded digest, which is signed
	// and attested by the stack's key. Its content is checked as it is
	// pulled, below: a blob that does not match its digest fails the
	// pull, before any process starts.
	if key == nil && SignerFlavor(pl.Stack) != SignerNone {
		return "", fmt.Errorf("deployment %s: %s: no public key to verify it with on stack %s: nothing deployed", c.Name, what, pl.Stack.Name)
	}
	if key != nil {
		want, err := verify.ModelBuild(recs, mv)
		if err == nil {
			err = (&verify.Verifier{Key: key}).Model(ctx, ms, dep.Model, dep.Stage, stage.Digest, want, false)
		}
		if err != nil {
			return "", fmt.Errorf("deployment %s: %s does not verify: %w; nothing deployed", c.Name, what, err)
		}
	}
	image := ""
	if c.Image != nil {
		image = c.Image.Pinned
	}
	t := &deploy.Target{
		Name: c.Name, Model: dep.Model, Stage: dep.Stage, Version: stage.ModelVersion, Digest: stage.Digest,
		Spec: c.Spec, Run: serve.Run, Root: p.ws.Root, Image: image, Health: serve.Health,
		StartTimeout: serve.StartTimeout, Env: serve.Env, Port: dep.Port, Source: pl.Plan.Source.Commit,
		Fetch: func(ctx context.Context, dest string) error {
			err := ms.PullModel(ctx, stage.Digest, dep.Model, dest)
			if errors.Is(err, registry.ErrDigestMismatch) {
				return fmt.Errorf("stored content was altered: %w; nothing deployed", err)
			}
			return err
		},
	}
	if pl.Stack.ArtifactStore.Flavor == "oci" {
		t.Ref = ms.ModelRepository(dep.Model).Reference() + "@" + stage.Digest
	}
	st, err := d.Deploy(ctx, t)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("deployed %s %s@%s %s at %s", c.Name, dep.Model, dep.Stage, versionDigest(st.Version, st.Digest), st.URL), nil
}

// versionDigest is "1.0.0 (sha256:3f2a9c1d7e4b)".
func versionDigest(version, digest string) string {
	h := strings.TrimPrefix(digest, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return fmt.Sprintf("%s (sha256:%s)", version, h)
}

// Deployer is the model deployer of the stack SelectStack picks: the
// local one when the CUE does not load (what this machine serves can
// still be listed and stopped), or for a stack whose model_deployer is
// none.
func (p *Project) Deployer(log io.Writer) (deploy.Deployer, error) {
	st, err := p.SelectStack("")
	if err != nil {
		if _, cerr := p.Config(); cerr != nil {
			return p.LocalDeployments(log), nil
		}
		return nil, err
	}
	d, err := p.deployer(st, log)
	if d == nil && err == nil {
		d = p.LocalDeployments(log)
	}
	return d, err
}

// Deployments lists the deployments the stack's model deployer serves
// (Deployer), and those the repository declares that nothing serves
// (state stopped), sorted by name. The declared ones are read only when
// the CUE loads: a listing still shows the processes of a repository
// whose CUE is broken.
func (p *Project) Deployments(ctx context.Context) ([]*deploy.Status, error) {
	d, err := p.Deployer(nil)
	if err != nil {
		return nil, err
	}
	list, err := d.List(ctx)
	if err != nil {
		return nil, err
	}
	cfg, cerr := p.Config()
	if cerr != nil {
		return list, nil
	}
	served := map[string]bool{}
	for _, s := range list {
		served[s.Name] = true
	}
	for _, name := range cfg.DeploymentNames() {
		if !served[name] {
			d := cfg.Deployments[name]
			list = append(list, &deploy.Status{Name: name, Model: d.Model, Stage: d.Stage, State: deploy.Stopped})
		}
	}
	slices.SortFunc(list, func(a, b *deploy.Status) int { return strings.Compare(a.Name, b.Name) })
	return list, nil
}
