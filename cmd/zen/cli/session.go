package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/apply"
	"github.com/zen-dev/zen/internal/workspace"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// session is what most commands work with: the project (its work tree
// and state ref), and its CUE when loaded.
type session struct {
	*zen.Project
	g     *globals // the flags it was opened with; nil in shell completion
	ws    *workspace.Workspace
	cfg   *schema.Config
	state *state.Store
}

// root is the directory zen runs as if started in: -C's, else the
// working directory ("." for a nil g, as shell completion has).
func (g *globals) root() string {
	if g == nil || g.dir == "" {
		return "."
	}
	return g.dir
}

// path resolves a path the user gave against -C's directory, as git -C
// does.
func (g *globals) path(p string) string {
	if g == nil || g.dir == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(g.dir, p)
}

// workDir is the absolute directory zen runs as if started in, which
// messages name paths relative to; "" when it cannot be told.
func (g *globals) workDir() string {
	wd, err := filepath.Abs(g.root())
	if err != nil {
		return ""
	}
	return wd
}

// options are the library's options, from the environment and the flags.
func (g *globals) options() zen.Options {
	var log io.Writer = os.Stderr
	if g != nil && g.stderr != nil {
		log = g.stderr
	}
	return zen.Options{
		StateRef: os.Getenv("ZEN_STATE_REF"),
		Stack:    os.Getenv("ZEN_STACK"),
		Remote:   os.Getenv("ZEN_REMOTE"),
		WorkDir:  g.workDir(),
		Password: []byte(os.Getenv("COSIGN_PASSWORD")),
		Secret:   apply.LookupSecret,
		Log:      log,
	}
}

// loadConfig loads the CUE of the work tree zen runs in, without opening
// the state ref.
func loadConfig(g *globals) (*schema.Config, error) {
	ws, err := workspace.Open(g.root())
	if err != nil {
		return nil, err
	}
	if err := ws.EnsureDataDir(); err != nil {
		return nil, fmt.Errorf("create %s: %w", workspace.DataDir, err)
	}
	return schema.Load(ws.Root)
}

// open opens the project zen runs in; with load, it loads the CUE too.
func open(g *globals, load bool) (*session, error) {
	p, err := zen.Open(g.root(), g.options())
	if err != nil {
		return nil, err
	}
	s := &session{Project: p, g: g, ws: p.Workspace(), state: p.State()}
	if load {
		if s.cfg, err = p.Config(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// stacks returns the declared stacks, or the implicit local one.
func stacks(cfg *schema.Config) map[string]*schema.Stack { return zen.Stacks(cfg) }

// selectStack picks the stack: --stack, else ZEN_STACK, else the clone's
// `zen stack use`, else the repository's default_stack.
func (s *session) selectStack(flag string) (*schema.Stack, error) { return s.SelectStack(flag) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
