// Package zen is zen as a Go library: what the zen command does, callable
// from a Go program.
//
// A Project is one git work tree that declares pipelines in CUE, with its
// state ref (refs/zen/state) and its stacks. The package owns what the
// commands decide, as opposed to how they show it:
//
//   - project.go: opening a work tree, choosing the stack, opening its
//     artifact store;
//   - state.go: sharing the state ref through a git remote (pull, push
//     with replay and retry);
//   - keys.go: the signing keys (the repository's pair, made on first
//     use, or a declared signer's) and the checks of cached artifacts'
//     signatures;
//   - plan.go and apply.go: the clone's apply lock, the plan and the
//     apply built on all of the above;
//   - journal.go and collect.go: recording what a stopped apply had
//     finished, and the runs a detached apply left on a cluster;
//   - init.go: the quickstart and the CI workflows zen init writes;
//   - runs.go and watch.go: reading recorded runs (by id, unique prefix
//     or "latest") and their steps' logs and outputs from the store, and
//     waiting for detached runs to record them (zen runs watch);
//   - models.go, lineage.go and history.go: recorded model versions and
//     stages, where a version came from, and a model's changes through
//     the state ref's history;
//   - verify.go: checking a model version, or every artifact of a run,
//     against a key, each failure typed by the check that failed;
//   - graph.go: pipelines' step graphs;
//   - metrics.go and plots.go: runs' metrics and parameters compared,
//     and metrics or plot outputs as Plots to draw;
//   - preview.go: pull-request previews, recorded on
//     refs/zen/preview/<branch>, reported, listed and cleaned up.
//
// This package reads no environment variable, never changes the working
// directory and keeps no package-level state: a Project is given its
// directory and its Options (the zen command fills them from its flags and
// from ZEN_STACK, ZEN_REMOTE, ZEN_STATE_REF, COSIGN_PASSWORD and the
// ZEN_SECRET_* secrets), and notes for people go to the io.Writers the
// options name. The packages it calls keep their own rules: a step's
// environment starts from the process's (package apply), and a state
// commit's author from git's (package state).
package zen

import (
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zen-dev/zen/internal/workspace"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// Options are a Project's settings: what the zen command takes from its
// environment and flags.
type Options struct {
	// StateRef is the state ref's name; "" is state.DefaultRef.
	StateRef string
	// Stack is the stack chosen for the process (the zen command's
	// ZEN_STACK): it counts after a stack a call names, and before the
	// clone's `zen stack use` and the repository's default_stack.
	Stack string
	// Remote is the git remote the state ref is shared through (the zen
	// command's ZEN_REMOTE); "" is the git config zen.remote, else
	// origin if there is one; "none" keeps the state local.
	Remote string
	// WorkDir is the directory that paths in messages are named
	// relative to, as a user would type them (the zen command's working
	// directory, with -C); "" names them by their absolute paths.
	WorkDir string
	// Password decrypts cosign private keys (the zen command's
	// COSIGN_PASSWORD); nil is the empty password.
	Password []byte
	// Secret looks a secret up by name (the zen command's
	// ZEN_SECRET_<NAME>): a declared signer's key is one. Nil knows no
	// secrets.
	Secret func(name string) (string, error)
	// Log receives notes for people, such as the making of the
	// repository's key pair; nil discards them.
	Log io.Writer
}

// Project is a git work tree that declares pipelines in CUE, and its state
// ref. It reads the CUE once (Config; a plan with Sets reads it again)
// and each stack's signing key once: open a new Project to see edits to
// them made meanwhile. It is not safe for concurrent use.
type Project struct {
	opts  Options
	ws    *workspace.Workspace
	state *state.Store

	cfg    *schema.Config // loaded by Config
	cfgErr error
	loaded bool

	signed map[string]*signed // the stacks' signers, by name, once loaded
}

// Open opens the git work tree around dir and its state ref. It makes
// zen's folder (.zen, ignored by git) in the work tree if it is missing.
// The CUE is loaded on first use (Config).
func Open(dir string, opts Options) (*Project, error) {
	ws, err := workspace.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := ws.EnsureDataDir(); err != nil {
		return nil, fmt.Errorf("create %s: %w", workspace.DataDir, err)
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	p := &Project{opts: opts, ws: ws}
	if p.state, err = state.Open(ws.Root, opts.StateRef); err != nil {
		return nil, err
	}
	return p, nil
}

// Root is the absolute path of the work tree's top.
func (p *Project) Root() string { return p.ws.Root }

// Workspace is the git work tree.
func (p *Project) Workspace() *workspace.Workspace { return p.ws }

// State is the state ref.
func (p *Project) State() *state.Store { return p.state }

// Options are the options the project was opened with.
func (p *Project) Options() Options { return p.opts }

// Config loads the work tree's CUE, once.
func (p *Project) Config() (*schema.Config, error) {
	if !p.loaded {
		p.cfg, p.cfgErr = schema.Load(p.ws.Root)
		p.loaded = true
	}
	return p.cfg, p.cfgErr
}

// Records are the records of the state ref's current commit, with the
// previews the clone has for the runs it lacks (a preview's run is found
// by its id).
func (p *Project) Records() (state.Records, error) {
	snap, err := p.state.Head()
	if err != nil {
		return state.Records{}, err
	}
	previews, err := p.localPreviews()
	if err != nil {
		return state.Records{}, err
	}
	return state.Records{Snapshot: snap, Ref: p.state.Ref(), Previews: previews}, nil
}

// Stacks returns the stacks cfg declares, or, for a repository that
// declares none, the implicit local one: steps run here, artifacts go to
// .zen/store.
func Stacks(cfg *schema.Config) map[string]*schema.Stack {
	if len(cfg.Stacks) == 0 {
		return map[string]*schema.Stack{"local": {
			Name:          "local",
			Orchestrator:  schema.Component{Flavor: "local"},
			ArtifactStore: schema.Component{Flavor: "oci-layout", Settings: map[string]any{"path": ".zen/store"}},
		}}
	}
	return cfg.Stacks
}

// SelectStack picks the stack of the project's CUE: name, else
// Options.Stack, else the clone's `zen stack use`, else the repository's
// default_stack.
func (p *Project) SelectStack(name string) (*schema.Stack, error) {
	cfg, err := p.Config()
	if err != nil {
		return nil, err
	}
	return p.selectStack(cfg, name)
}

// selectStack picks the stack of cfg as SelectStack does.
func (p *Project) selectStack(cfg *schema.Config, name string) (*schema.Stack, error) {
	return pickStack(cfg, choice{name, "--stack"}, choice{p.opts.Stack, "ZEN_STACK"}, choice{p.UsedStack(), "zen stack use"})
}

// choice is a stack named, and where its name came from.
type choice struct{ name, from string }

// pickStack returns the stack of cfg the first choice with a name names,
// else the repository's default_stack; an unknown name is an error that
// says where it came from and lists the stacks there are.
func pickStack(cfg *schema.Config, choices ...choice) (*schema.Stack, error) {
	c := choice{cfg.DefaultStack, "default_stack"}
	for _, ch := range choices {
		if ch.name != "" {
			c = ch
			break
		}
	}
	all := Stacks(cfg)
	st, ok := all[c.name]
	if !ok {
		return nil, fmt.Errorf("unknown stack %q (from %s); stacks: %s", c.name, c.from, strings.Join(slices.Sorted(maps.Keys(all)), ", "))
	}
	return st, nil
}

// UsedStack is the clone's `zen stack use` choice (the git config
// zen.stack), "" for none.
func (p *Project) UsedStack() string {
	cfg, err := p.ws.Repo.Config()
	if err != nil {
		return ""
	}
	return cfg.Raw.Section("zen").Option("stack")
}

// UseStack records name as the clone's stack choice (the git config
// zen.stack), after checking that the CUE declares it.
func (p *Project) UseStack(name string) error {
	cfg, err := p.Config()
	if err != nil {
		return err
	}
	all := Stacks(cfg)
	if _, ok := all[name]; !ok {
		return fmt.Errorf("unknown stack %q; stacks: %s", name, strings.Join(slices.Sorted(maps.Keys(all)), ", "))
	}
	gc, err := p.ws.Repo.Config()
	if err != nil {
		return err
	}
	gc.Raw.Section("zen").SetOption("stack", name)
	if err := p.ws.Repo.SetConfig(gc); err != nil {
		return fmt.Errorf("write git config: %w", err)
	}
	return nil
}

// OpenStore opens the stack's artifact store. A layout store's path is
// relative to the work tree's top; messages name it relative to
// Options.WorkDir.
func (p *Project) OpenStore(st *schema.Stack) (registry.Store, error) {
	switch st.ArtifactStore.Flavor {
	case "oci-layout":
		path := st.ArtifactStore.String("path")
		if path == "" {
			path = ".zen/store"
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(p.ws.Root, filepath.FromSlash(path))
		}
		return registry.OpenLayout(p.displayPath(path))
	case "oci":
		return registry.OpenRemote(st.ArtifactStore.String("repository"))
	}
	return nil, fmt.Errorf("stack %s: unknown artifact store flavor %q", st.Name, st.ArtifactStore.Flavor)
}

// displayPath names the absolute path abs relative to Options.WorkDir, as
// a user there would type it, where that name also leads to abs from the
// process's own directory (which registry.OpenLayout resolves it
// against); else it is abs.
func (p *Project) displayPath(abs string) string {
	if p.opts.WorkDir == "" {
		return abs
	}
	rel, err := filepath.Rel(p.opts.WorkDir, abs)
	if err != nil {
		return abs
	}
	if back, err := filepath.Abs(rel); err != nil || back != abs {
		return abs
	}
	return rel
}

// StoreRef names a store for zen on another machine (zen step-run
// --store): oci:REPOSITORY or oci-layout:PATH.
func StoreRef(store registry.Store) string {
	flavor, name, _ := strings.Cut(store.String(), " ")
	return flavor + ":" + name
}

// OpenStoreRef opens the store a StoreRef names.
func OpenStoreRef(ref string) (registry.Store, error) {
	flavor, name, ok := strings.Cut(ref, ":")
	switch {
	case !ok || name == "":
	case flavor == "oci":
		return registry.OpenRemote(name)
	case flavor == "oci-layout":
		return registry.OpenLayout(name)
	}
	return nil, fmt.Errorf("--store %q: want oci:REPOSITORY or oci-layout:PATH", ref)
}
