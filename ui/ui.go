// Package ui is zen ui: a read-only web dashboard over a project's state
// ref and artifact store, as an http.Handler a Go program can serve or
// mount. Its pages are rendered on the server with html/template from
// what package zen reads (runs, models, lineage, metrics, previews, a
// stage's history); the step graphs, the lineage graph and the metrics
// chart are drawn in the browser by the pinned npm packages in
// ui/assets/vendor (dagre, uPlot), embedded in the binary, so nothing is
// fetched from elsewhere. See docs/decisions.md, "zen ui".
//
// Every page has stable ids, classes and data-* attributes that tests and
// scripts can select (listed in docs/decisions.md); a page polls
// /api/state and reloads when the state ref moves.
package ui

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/state"
)

//go:embed templates/*.html templates/partials/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Options are a UI's settings.
type Options struct {
	// Stack names the stack whose artifact store logs and outputs are
	// read from; "" is each run's own stack (as zen logs has it).
	Stack string
	// PageSize is how many runs a page of the runs list shows; 0 is 50.
	PageSize int
}

// ContentSecurityPolicy is the Content-Security-Policy of every response:
// scripts, styles, images and requests from zen ui itself only, no
// inline script, no frames, no plugins.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// UI serves the dashboard. It reads the project's state on each request,
// so that a page shows what the state ref holds now; requests are served
// one at a time, as a zen.Project is not safe for concurrent use.
type UI struct {
	p     *zen.Project
	opts  Options
	mu    sync.Mutex
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// New makes the dashboard of project p.
func New(p *zen.Project, opts Options) (*UI, error) {
	if opts.PageSize <= 0 {
		opts.PageSize = 50
	}
	u := &UI{p: p, opts: opts, pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials/*.html", n)
		if err != nil {
			return nil, fmt.Errorf("ui template %s: %w", n, err)
		}
		u.pages[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	assets, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, err
	}
	u.mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	u.mux.HandleFunc("GET /api/state", u.locked(u.apiState))
	for pattern, h := range map[string]func(http.ResponseWriter, *http.Request){
		"GET /{$}":                               u.runsPage,
		"GET /runs/{id}":                         u.runPage,
		"GET /runs/{id}/steps/{step}":            u.stepPage,
		"GET /models":                            u.modelsPage,
		"GET /models/{model}":                    u.modelPage,
		"GET /models/{model}/versions/{version}": u.versionPage,
		"GET /models/{model}/stages/{stage}":     u.auditPage,
		"GET /metrics":                           u.metricsPage,
		"GET /compare":                           u.comparePage,
		"GET /previews":                          u.previewsPage,
		"GET /previews/{branch...}":              u.previewPage,
		"GET /records/{commit}/{path...}":        u.recordPage,
	} {
		u.mux.HandleFunc(pattern, u.locked(h))
	}
	u.mux.HandleFunc("/", u.locked(func(w http.ResponseWriter, r *http.Request) {
		u.fail(w, r, http.StatusNotFound, fmt.Sprintf("no page %s", r.URL.Path), nil)
	}))
	return u, nil
}

// ServeHTTP serves GET and HEAD requests; any other method is refused
// with 405, as the dashboard changes nothing.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "zen ui is read-only: "+r.Method+" is not allowed", http.StatusMethodNotAllowed)
		return
	}
	u.mux.ServeHTTP(w, r)
}

// locked serves one request at a time.
func (u *UI) locked(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		defer u.mu.Unlock()
		h(w, r)
	}
}

// stateVersion names what the pages show: the state ref's commit and
// every preview's, which a page compares to reload when one moved.
func (u *UI) stateVersion() (commit, version string, err error) {
	sn, err := u.p.State().Head()
	if err != nil {
		return "", "", err
	}
	commit = sn.Commit()
	ps, err := u.p.State().Previews()
	if err != nil {
		return commit, "", err
	}
	parts := []string{commit}
	for _, pv := range ps {
		parts = append(parts, pv.Ref+"="+pv.Commit)
	}
	return commit, strings.Join(parts, " "), nil
}

// apiState answers the pages' poll: {"ref", "commit", "version"}.
func (u *UI) apiState(w http.ResponseWriter, r *http.Request) {
	commit, version, err := u.stateVersion()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	body := map[string]string{"ref": u.p.State().Ref(), "commit": commit, "version": version}
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		body["error"] = err.Error()
	}
	json.NewEncoder(w).Encode(body)
}

// page is what every page's layout shows around its content.
type page struct {
	Title   string
	Nav     string // the navigation entry to mark: runs, models, metrics, previews
	Ref     string
	Version string
	Error   string // a problem with the whole page, shown at its top
	Data    any
}

// render writes page name with data, status 200.
func (u *UI) render(w http.ResponseWriter, r *http.Request, name, title, nav string, data any) {
	u.renderStatus(w, r, http.StatusOK, name, page{Title: title, Nav: nav, Data: data})
}

// renderStatus writes page name. It renders into a buffer first, so that
// a template error is a clean 500 rather than half a page.
func (u *UI) renderStatus(w http.ResponseWriter, r *http.Request, status int, name string, pg page) {
	pg.Ref = u.p.State().Ref()
	if _, v, err := u.stateVersion(); err == nil {
		pg.Version = v
	}
	var buf bytes.Buffer
	if err := u.pages[name].Execute(&buf, pg); err != nil {
		http.Error(w, fmt.Sprintf("zen ui: page %s: %v", name, err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// problem is an error page's content.
type problem struct {
	Message string
	Detail  string
}

// fail writes an error page: what is wrong, and err's text.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, status int, msg string, err error) {
	pr := problem{Message: msg}
	if err != nil {
		pr.Detail = err.Error()
	}
	u.renderStatus(w, r, status, "error", page{Title: http.StatusText(status), Data: pr})
}

// notFoundOr writes a 404 page naming what was asked for, or, for a
// record that cannot be read, a 500 page naming the record.
func (u *UI) notFoundOr(w http.ResponseWriter, r *http.Request, what string, err error) {
	var ce *state.CorruptError
	if errors.As(err, &ce) {
		u.fail(w, r, http.StatusInternalServerError, "corrupt record "+ce.Path, err)
		return
	}
	u.fail(w, r, http.StatusNotFound, what+" not found", err)
}

// ctx bounds the store reads of one request.
func ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 30*time.Second)
}
