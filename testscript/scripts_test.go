// Package testscript runs zen's end-to-end scripts: testdata/*.txtar, each
// a real git repository, real steps and a real artifact store. Set
// ZEN_UPDATE=1 to rewrite the scripts' expected files from what zen prints.
package testscript

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zen-dev/zen/internal/testregistry"
	"github.com/zen-dev/zen/internal/testslurm"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/zen-dev/zen/cmd/zen/cli"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"zen":        func() { os.Exit(cli.Main()) },
		"fileserver": func() { os.Exit(fileserverMain()) },
		"pty":        func() { os.Exit(ptyMain()) },
	})
}

func TestScripts(t *testing.T) {
	t.Parallel() // beside the scripts: each waits on processes as much as on the CPU
	testscript.Run(t, testscript.Params{
		Dir:           "testdata",
		UpdateScripts: os.Getenv("ZEN_UPDATE") != "",
		Setup: func(env *testscript.Env) error {
			// HOME and the git config live beside the work folder, so that
			// files steps write there never make the repository dirty.
			home := env.WorkDir + "-home"
			if err := os.MkdirAll(home, 0o755); err != nil {
				return err
			}
			gitconfig := filepath.Join(home, ".gitconfig")
			cfg := "[user]\n\tname = Zen Test\n\temail = test@zen.invalid\n[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n"
			if err := os.WriteFile(gitconfig, []byte(cfg), 0o644); err != nil {
				return err
			}
			env.Setenv("GIT_CONFIG_GLOBAL", gitconfig)
			env.Setenv("GIT_CONFIG_NOSYSTEM", "1")
			env.Setenv("HOME", home)
			env.Setenv("NO_COLOR", "1")
			env.Setenv("DOCKER_CONFIG", filepath.Join(home, ".docker"))
			env.Defer(func() { stopDeployments(env.WorkDir) })
			return nil
		},
		Condition: condition,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"browser":   cmdBrowser,
			"ci-run":    cmdCIRun,
			"freeport":  cmdFreePort,
			"httpget":   cmdHTTPGet,
			"httpserve": cmdHTTPServe,
			"registry":  cmdRegistry,
			"slurm":     cmdSlurm,
			"stateref":  cmdStateRef,
			"waitfile":  cmdWaitFile,
		},
	})
}

// condition answers [registry-process], [cosign], [crane], [oras],
// [skopeo], [podman] and [browser]: whether docker-registry, the cosign
// CLI, crane, oras, skopeo, podman (with runc, catatonit and busybox) and
// Chromium are installed.
func condition(cond string) (bool, error) {
	switch cond {
	case "browser":
		return installed("chromium", "apt-get install chromium")
	case "registry-process":
		return installed("docker-registry", "apt-get install docker-registry")
	case "cosign":
		return installed("cosign", "go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5")
	case "crane":
		return installed("crane", "go install github.com/google/go-containerregistry/cmd/crane@v0.22.1")
	case "oras":
		return installed("oras", "go install oras.land/oras/cmd/oras@v1.3.6")
	case "skopeo":
		return installed("skopeo", "apt-get install skopeo")
	case "podman":
		// The image scripts build their image from busybox-static and run
		// it with podman, runc and catatonit (--init).
		for _, p := range []string{"podman", "runc", "busybox", "catatonit"} {
			if ok, err := installed(p, "apt-get install podman runc uidmap catatonit busybox-static"); !ok {
				return ok, err
			}
		}
		return true, nil
	case "slurm":
		if !testslurm.Available() || os.Geteuid() != 0 {
			if os.Getenv("CI") != "" {
				return false, errors.New("Slurm is not installed, or not as root; .ci/run installs it (apt-get install slurm-wlm munge)")
			}
			return false, nil
		}
		return true, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// installed reports whether a program the real-tool scripts need is on
// PATH. In CI (CI set) its absence is an error, not a skip: .ci/run
// installs it.
func installed(program, how string) (bool, error) {
	if _, err := exec.LookPath(program); err != nil {
		if os.Getenv("CI") != "" {
			return false, fmt.Errorf("%s is not installed; .ci/run installs it (%s)", program, how)
		}
		return false, nil
	}
	return true, nil
}

// cmdRegistry starts an OCI registry on loopback for the rest of the
// script and sets $REGISTRY to its host:port.
//
//	registry           go-containerregistry's registry, in this process
//	registry process   the docker-registry program (distribution), a real
//	                   separate process; required where CI=true
//	registry closed    a host:port where nothing listens
func cmdRegistry(ts *testscript.TestScript, neg bool, args []string) {
	mode := ""
	if len(args) > 0 {
		mode = args[0]
	}
	switch mode {
	case "":
		srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
		ts.Defer(srv.Close)
		ts.Setenv("REGISTRY", strings.TrimPrefix(srv.URL, "http://"))
	case "flaky":
		srv := httptest.NewServer(flaky(ts.Getenv("HOME"), ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))))
		ts.Defer(srv.Close)
		ts.Setenv("REGISTRY", strings.TrimPrefix(srv.URL, "http://"))
	case "closed":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		ts.Check(err)
		addr := l.Addr().String()
		l.Close()
		ts.Setenv("REGISTRY", addr)
	case "process":
		bin, err := exec.LookPath("docker-registry")
		ts.Check(err)                                                                                 // scripts guard this with [registry-process]
		addr, stop, err := testregistry.Start(bin, filepath.Join(ts.Getenv("HOME"), "registry-data")) // outside the repository
		ts.Check(err)
		ts.Defer(stop)
		ts.Setenv("REGISTRY", addr)
	default:
		ts.Fatalf("usage: registry [process|flaky|closed]")
	}
}

// flaky wraps a registry so that a script can cut it off in the middle of
// a push, and see what was uploaded. It appends the digest of every blob
// upload it completes to $HOME/registry-uploads. While $HOME/registry-down
// holds "N PATH", the requests whose path contains PATH after the first N
// have their connection closed with no response, as a registry that went
// away would.
func flaky(home string, h http.Handler) http.Handler {
	var mu sync.Mutex
	seen := 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, err := os.ReadFile(filepath.Join(home, "registry-down")); err == nil {
			var n int
			var sub string
			fmt.Sscan(string(b), &n, &sub)
			mu.Lock()
			cut := strings.Contains(r.URL.Path, sub) && seen >= n
			if strings.Contains(r.URL.Path, sub) {
				seen++
			}
			mu.Unlock()
			if cut {
				if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
					conn.Close()
				}
				return
			}
		} else {
			mu.Lock()
			seen = 0
			mu.Unlock()
		}
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if d := r.URL.Query().Get("digest"); d != "" && rec.status == http.StatusCreated {
			f, err := os.OpenFile(filepath.Join(home, "registry-uploads"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err == nil {
				fmt.Fprintln(f, d)
				f.Close()
			}
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// cmdStateRef checks the state ref of the repository in the current
// directory against a saved value, so a script can assert that a failed
// command wrote nothing.
//
//	stateref save      remember where refs/zen/state is (or that it is absent)
//	stateref same      fail unless it is still there
//	stateref none      fail unless there is no state ref
//	! stateref same    fail unless it moved
func cmdStateRef(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: stateref save|same|none")
	}
	cur := revParse(ts, "refs/zen/state")
	saved := ts.Getenv("HOME") + "/stateref-saved"
	switch args[0] {
	case "save":
		ts.Check(os.WriteFile(saved, []byte(cur), 0o644))
	case "same":
		b, err := os.ReadFile(saved)
		ts.Check(err)
		if same := string(b) == cur; same == neg {
			ts.Fatalf("state ref: saved %q, now %q", b, cur)
		}
	case "none":
		if (cur == "") == neg {
			ts.Fatalf("state ref is %q", cur)
		}
	default:
		ts.Fatalf("usage: stateref save|same|none")
	}
}

func revParse(ts *testscript.TestScript, ref string) string {
	cmd := exec.Command("git", "rev-parse", "--verify", "-q", ref)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL="+ts.Getenv("GIT_CONFIG_GLOBAL"))
	out, _ := cmd.Output()
	return strings.TrimSpace(string(out))
}

// cmdWaitFile waits up to 30 s for a file to exist, and with REGEXP for
// a line of it to match: what a background command writes, to know where
// it has got to.
//
//	waitfile PATH [REGEXP]
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 && len(args) != 2 {
		ts.Fatalf("usage: waitfile PATH [REGEXP]")
	}
	var re *regexp.Regexp
	if len(args) == 2 {
		var err error
		re, err = regexp.Compile("(?m)" + args[1])
		ts.Check(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(ts.MkAbs(args[0]))
		if err == nil && (re == nil || re.Match(b)) {
			return
		}
		if time.Now().After(deadline) {
			if re != nil {
				ts.Fatalf("%s did not match %q: %q", args[0], args[1], b)
			}
			ts.Fatalf("%s did not appear", args[0])
		}
		time.Sleep(20 * time.Millisecond) // polling, with a deadline
	}
}

// cmdSlurm starts a two-node Slurm cluster (nodes n1 and n2, partition
// debug) for the rest of the script and sets $SLURM_CONF for the clients.
func cmdSlurm(ts *testscript.TestScript, neg bool, args []string) {
	c, err := testslurm.Start(filepath.Join(ts.Getenv("HOME"), "slurm"))
	ts.Check(err) // scripts guard this with [slurm]
	ts.Defer(c.Stop)
	ts.Setenv("SLURM_CONF", c.Conf)
}
