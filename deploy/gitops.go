package deploy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/zen-dev/zen/state"
)

// GitOps serves deployments through a deploy repository: each is
// rendered as Kubernetes manifests in <Path>/<name>/ of the repository's
// Branch, committed and pushed; a GitOps controller of the cluster (Argo
// CD, Flux) applies them. What a deployment serves is what its manifests
// say on the branch as the repository has it now: nothing of it is on
// zen's state ref, and a push the repository refuses changes nothing.
// The branch is fetched into Cache, a bare repository, and written there
// with go-git, as the state ref is; no work tree is checked out.
type GitOps struct {
	// Repo is the deploy repository: a URL, or an absolute path.
	Repo   string
	Branch string
	// Path is the folder of the repository the deployments' folders are
	// in.
	Path string
	// Cache is the bare repository the branch is fetched into.
	Cache     string
	Manifests Manifests
	// Author is whom the commits are by; Source is the commit of the
	// repository that declares the deployments, named in their messages.
	Author state.Signature
	Source string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// branch fetches the deploy repository's branch and returns it, with a
// snapshot of its commit.
func (g *GitOps) branch(ctx context.Context) (*state.Store, *state.Snapshot, string, error) {
	st, err := state.OpenBranch(ctx, g.Cache, g.Branch)
	if err != nil {
		return nil, nil, "", fmt.Errorf("deploy repository %s: %w", g.Repo, err)
	}
	head, err := st.FetchBranch(ctx, g.Repo)
	if err != nil {
		return nil, nil, "", fmt.Errorf("deploy repository %s, branch %s: %w", g.Repo, g.Branch, err)
	}
	snap, err := st.Head()
	if err != nil {
		return nil, nil, "", err
	}
	return st, snap, head, nil
}

// dir is a deployment's folder in the repository.
func (g *GitOps) dir(name string) string { return path.Join(g.Path, name) }

// Status implements Deployer: what the deployment's manifests on the
// branch serve, in state rendered.
func (g *GitOps) Status(ctx context.Context, name string) (*Status, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	_, snap, _, err := g.branch(ctx)
	if err != nil {
		return nil, err
	}
	return g.status(snap, name)
}

// List implements Deployer.
func (g *GitOps) List(ctx context.Context) ([]*Status, error) {
	_, snap, _, err := g.branch(ctx)
	if err != nil {
		return nil, err
	}
	names, err := snap.List(g.Path)
	if err != nil {
		return nil, err
	}
	var out []*Status
	for _, name := range names {
		st, err := g.status(snap, name)
		if err != nil {
			return nil, err
		}
		if st != nil {
			out = append(out, st)
		}
	}
	return out, nil
}

// status reads a deployment's main manifest on snap; nil when it has
// none (a folder zen did not write).
func (g *GitOps) status(snap *state.Snapshot, name string) (*Status, error) {
	for _, f := range []string{fileDeployment, fileKServe} {
		p := path.Join(g.dir(name), f)
		b, ok, err := snap.Read(p)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		var m renderedMeta
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("deploy repository %s: %s: %w", g.Repo, p, err)
		}
		a := m.Metadata.Annotations
		if a[AnnotationDigest] == "" {
			return nil, nil
		}
		ns := m.Metadata.Namespace
		if ns == "" {
			ns = "default"
		}
		return &Status{
			Name: name, Model: a[AnnotationModel], Stage: a[AnnotationStage], Version: a[AnnotationVersion],
			Digest: a[AnnotationDigest], Spec: a[AnnotationSpec], State: Rendered,
			URL: fmt.Sprintf("http://%s.%s.svc.cluster.local", name, ns),
			Log: g.Repo + " " + g.Branch + ":" + p,
		}, nil
	}
	return nil, nil
}

// files lists a deployment's files on snap, by path in the repository.
func (g *GitOps) files(snap *state.Snapshot, name string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := snap.Walk(g.dir(name), func(p string) error {
		b, _, err := snap.Read(p)
		out[p] = b
		return err
	})
	return out, err
}

// Deploy implements Deployer: t's manifests replace the deployment's
// folder in one commit, pushed to the branch. Manifests the branch holds
// already make no commit.
func (g *GitOps) Deploy(ctx context.Context, t *Target) (*Status, error) {
	if err := checkName(t.Name); err != nil {
		return nil, err
	}
	rendered, err := g.Manifests.Render(t)
	if err != nil {
		return nil, err
	}
	want := map[string][]byte{}
	for f, b := range rendered {
		want[path.Join(g.dir(t.Name), f)] = b
	}
	msg := fmt.Sprintf("zen: deploy %s: %s@%s %s (sha256:%s)\n\nmodel: %s\nstage: %s\nversion: %s\ndigest: %s\nsource commit: %s\n",
		t.Name, t.Model, t.Stage, t.Version, shortDigest(t.Digest), t.Model, t.Stage, t.Version, t.Digest, sourceOr(t.Source))
	snap, err := g.write(ctx, t.Name, want, msg)
	if err != nil {
		return nil, err
	}
	return g.status(snap, t.Name)
}

// Stop implements Deployer: the deployment's folder is removed in a
// commit pushed to the branch; the cluster's controller removes what it
// applied of it.
func (g *GitOps) Stop(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	_, err := g.write(ctx, name, nil, fmt.Sprintf("zen: stop %s\n\nsource commit: %s\n", name, sourceOr(g.Source)))
	return err
}

// write makes the deployment's folder hold want (nothing, for nil) on the
// branch: a commit on what the repository has now, pushed as a
// fast-forward. It returns the branch as it then is.
func (g *GitOps) write(ctx context.Context, name string, want map[string][]byte, msg string) (*state.Snapshot, error) {
	st, snap, head, err := g.branch(ctx)
	if err != nil {
		return nil, err
	}
	have, err := g.files(snap, name)
	if err != nil {
		return nil, err
	}
	change := map[string][]byte{}
	for p := range have {
		if _, ok := want[p]; !ok {
			change[p] = nil
		}
	}
	for p, b := range want {
		if old, ok := have[p]; !ok || !bytes.Equal(old, b) {
			change[p] = b
		}
	}
	if len(change) == 0 {
		return snap, nil
	}
	author := g.Author
	author.When = time.Now()
	commit, err := st.Commit(ctx, head, state.Change{Files: change, Message: msg, Author: author})
	if err != nil {
		return nil, fmt.Errorf("deploy repository %s: %w", g.Repo, err)
	}
	if err := st.PushBranch(ctx, g.Repo); err != nil {
		return nil, fmt.Errorf("deployment %s: %w; the deploy repository is unchanged", name, err)
	}
	g.progress("committed %s to %s %s (%s)", strings.Join(slices.Sorted(maps.Keys(change)), ", "), g.Repo, g.Branch, commit[:12])
	return st.At(commit)
}

// Logs implements Deployer: a rendered deployment runs in a cluster,
// whose logs zen does not read.
func (g *GitOps) Logs(ctx context.Context, name string, w io.Writer, follow bool) error {
	ns := g.Manifests.Namespace
	if ns == "" {
		ns = "default"
	}
	return fmt.Errorf("deployment %s is rendered to the deploy repository %s: its logs are the cluster's (kubectl logs -n %s -l %s=%s)", name, g.Repo, ns, labelName, name)
}

func (g *GitOps) progress(format string, args ...any) {
	if g.Log != nil {
		fmt.Fprintf(g.Log, format+"\n", args...)
	}
}

func sourceOr(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
