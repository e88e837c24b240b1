package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zen-dev/zen/internal/workspace"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// session is what most commands work with: the work tree, its CUE, and the
// state ref.
type session struct {
	ws    *workspace.Workspace
	cfg   *schema.Config
	state *state.Store

	signed *signed // the stack's signer, once loaded (one stack a session)
}

// stateRef is the state ref's name: ZEN_STATE_REF or refs/zen/state.
func stateRef() string {
	if r := os.Getenv("ZEN_STATE_REF"); r != "" {
		return r
	}
	return state.DefaultRef
}

// openWorkspace opens the git work tree around the current directory.
func openWorkspace() (*workspace.Workspace, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	ws, err := workspace.Open(wd)
	if err != nil {
		return nil, err
	}
	if err := ws.EnsureDataDir(); err != nil {
		return nil, fmt.Errorf("create %s: %w", workspace.DataDir, err)
	}
	return ws, nil
}

// loadConfig loads the CUE of the work tree around the current directory.
func loadConfig() (*schema.Config, error) {
	ws, err := openWorkspace()
	if err != nil {
		return nil, err
	}
	return schema.Load(ws.Root)
}

// open opens the work tree and the state ref; with load, it loads the CUE
// too.
func open(load bool, overrides ...schema.Override) (*session, error) {
	ws, err := openWorkspace()
	if err != nil {
		return nil, err
	}
	s := &session{ws: ws}
	if load {
		if s.cfg, err = schema.Load(ws.Root, overrides...); err != nil {
			return nil, err
		}
	}
	if s.state, err = state.Open(ws.Root, stateRef()); err != nil {
		return nil, err
	}
	return s, nil
}

// implicitLocal is the stack a repository without stacks gets.
var implicitLocal = &schema.Stack{
	Name:          "local",
	Orchestrator:  schema.Component{Flavor: "local"},
	ArtifactStore: schema.Component{Flavor: "oci-layout", Settings: map[string]any{"path": ".zen/store"}},
}

// stacks returns the declared stacks, or the implicit local one.
func stacks(cfg *schema.Config) map[string]*schema.Stack {
	if len(cfg.Stacks) == 0 {
		return map[string]*schema.Stack{"local": implicitLocal}
	}
	return cfg.Stacks
}

// selectStack picks the stack: --stack, else ZEN_STACK, else the clone's
// `zen stack use`, else the repository's default_stack.
func (s *session) selectStack(flag string) (*schema.Stack, error) {
	name, from := flag, "--stack"
	if name == "" {
		name, from = os.Getenv("ZEN_STACK"), "ZEN_STACK"
	}
	if name == "" {
		name, from = usedStack(s.ws), "zen stack use"
	}
	if name == "" {
		name, from = s.cfg.DefaultStack, "default_stack"
	}
	all := stacks(s.cfg)
	st, ok := all[name]
	if !ok {
		return nil, fmt.Errorf("unknown stack %q (from %s); stacks: %s", name, from, strings.Join(slices.Sorted(maps.Keys(all)), ", "))
	}
	return st, nil
}

// openStore opens the stack's artifact store.
func (s *session) openStore(st *schema.Stack) (registry.Store, error) {
	switch st.ArtifactStore.Flavor {
	case "oci-layout":
		p := st.ArtifactStore.String("path")
		if p == "" {
			p = ".zen/store"
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(s.ws.Root, filepath.FromSlash(p))
			// Named relative to where zen runs, as a user would type it.
			if wd, err := os.Getwd(); err == nil {
				if rel, err := filepath.Rel(wd, p); err == nil {
					p = rel
				}
			}
		}
		return registry.OpenLayout(p)
	case "oci":
		return registry.OpenRemote(st.ArtifactStore.String("repository"))
	}
	return nil, fmt.Errorf("stack %s: unknown artifact store flavor %q", st.Name, st.ArtifactStore.Flavor)
}

// usedStack reads the clone's `zen stack use` choice from the git config.
func usedStack(ws *workspace.Workspace) string {
	cfg, err := ws.Repo.Config()
	if err != nil {
		return ""
	}
	return cfg.Raw.Section("zen").Option("stack")
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
