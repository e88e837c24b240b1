package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test binary is also the serving process: with ZEN_TEST_SERVE set
// it serves /healthz and /predict (the model file's content) on $PORT,
// as a model's serving command would.
func TestMain(m *testing.M) {
	switch os.Getenv("ZEN_TEST_SERVE") {
	case "":
		os.Exit(m.Run())
	case "exit":
		fmt.Println("loading the model failed")
		os.Exit(3)
	case "sick":
		serve(http.StatusServiceUnavailable)
	default:
		serve(http.StatusOK)
	}
}

func serve(health int) {
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(health) })
	http.HandleFunc("/predict", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(os.Getenv("ZEN_MODEL"))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(b)
	})
	fmt.Println("serving", os.Getenv("ZEN_MODEL_VERSION"), "on", os.Getenv("PORT"))
	err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil)
	fmt.Println(err)
	os.Exit(1)
}

// target is a deployment of a file model holding content, served by the
// test binary in mode (see TestMain).
func target(t *testing.T, name, version, content, mode string, port int) *Target {
	sum := sha256.Sum256([]byte(content))
	return &Target{
		Name: name, Model: "fraud", Stage: "production", Version: version,
		Digest: fmt.Sprintf("sha256:%x", sum), Spec: "sha256:spec",
		Run: []string{os.Args[0]}, Root: t.TempDir(), Health: "/healthz",
		StartTimeout: 10 * time.Second, Env: map[string]string{"ZEN_TEST_SERVE": mode}, Port: port,
		Fetch: func(ctx context.Context, dest string) error { return os.WriteFile(dest, []byte(content), 0o644) },
	}
}

func newLocal(t *testing.T) *Local {
	l := &Local{Dir: filepath.Join(t.TempDir(), "deployments")}
	t.Cleanup(func() {
		sts, _ := l.List(context.Background())
		for _, st := range sts {
			l.Stop(context.Background(), st.Name)
		}
	})
	return l
}

func predict(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url + "/predict")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func TestDeploySwitchStop(t *testing.T) {
	ctx := context.Background()
	l := newLocal(t)
	v1 := target(t, "api", "1.0.0", "weights 1", "ok", 0)
	st1, err := l.Deploy(ctx, v1)
	if err != nil {
		t.Fatal(err)
	}
	if st1.State != Running || st1.Digest != v1.Digest || !st1.Serves(v1.Digest, v1.Spec) {
		t.Fatalf("status %+v", st1)
	}
	if got := predict(t, st1.URL); got != "weights 1" {
		t.Fatalf("predict %q", got)
	}
	// The version's files are read-only.
	model := filepath.Join(filepath.Dir(st1.Log), "model")
	if fi, err := os.Stat(model); err != nil || fi.Mode().Perm()&0o222 != 0 {
		t.Fatalf("model %v %v", fi.Mode(), err)
	}

	v2 := target(t, "api", "1.1.0", "weights 2", "ok", 0)
	st2, err := l.Deploy(ctx, v2)
	if err != nil {
		t.Fatal(err)
	}
	if got := predict(t, st2.URL); got != "weights 2" {
		t.Fatalf("predict %q", got)
	}
	if alive(st1.PID, 0) {
		t.Fatal("the replaced process still runs")
	}
	if _, err := os.Stat(filepath.Dir(st1.Log)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the replaced release's folder is left: %v", err)
	}
	now, err := l.Status(ctx, "api")
	if err != nil || now.Version != "1.1.0" || now.State != Running {
		t.Fatalf("status %+v %v", now, err)
	}
	var logs bytes.Buffer
	if err := l.Logs(ctx, "api", &logs, false); err != nil || !strings.Contains(logs.String(), "serving 1.1.0 on") {
		t.Fatalf("logs %q %v", logs.String(), err)
	}
	list, err := l.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "api" {
		t.Fatalf("list %v %v", list, err)
	}

	if err := l.Stop(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	if alive(st2.PID, 0) {
		t.Fatal("the stopped process still runs")
	}
	if st, err := l.Status(ctx, "api"); st != nil || err != nil {
		t.Fatalf("status after stop %+v %v", st, err)
	}
	if err := l.Stop(ctx, "api"); err != nil {
		t.Fatalf("a second stop: %v", err)
	}
}

func TestDeployFailedStartKeepsOld(t *testing.T) {
	ctx := context.Background()
	l := newLocal(t)
	st1, err := l.Deploy(ctx, target(t, "api", "1.0.0", "weights 1", "ok", 0))
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Deploy(ctx, target(t, "api", "1.1.0", "weights 2", "exit", 0))
	if err == nil {
		t.Fatal("a command that exits deployed")
	}
	for _, want := range []string{"deployment api: ", "exited before it was ready (exit code 3)", "loading the model failed", "api 1.0.0 still serves at " + st1.URL} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	now, err := l.Status(ctx, "api")
	if err != nil || now.Version != "1.0.0" || now.State != Running || now.PID != st1.PID {
		t.Fatalf("status %+v %v", now, err)
	}
	if got := predict(t, now.URL); got != "weights 1" {
		t.Fatalf("predict %q", got)
	}
	// The failed release left no folder.
	entries, _ := os.ReadDir(filepath.Join(l.Dir, "api"))
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(filepath.Dir(st1.Log), filepath.Join(l.Dir, "api", e.Name())) {
			t.Errorf("release folder %s left", e.Name())
		}
	}

	// A process that runs but never passes its health check is stopped.
	sick := target(t, "api", "1.2.0", "weights 3", "sick", 0)
	sick.StartTimeout = 500 * time.Millisecond
	_, err = l.Deploy(ctx, sick)
	if err == nil || !strings.Contains(err.Error(), "was not ready within 500ms: /healthz did not answer 2xx on port") {
		t.Fatalf("error %v", err)
	}
	if now, _ := l.Status(ctx, "api"); now.Version != "1.0.0" || now.State != Running {
		t.Fatalf("status %+v", now)
	}

	// A version that cannot be fetched starts nothing.
	bad := target(t, "api", "1.3.0", "x", "ok", 0)
	bad.Fetch = func(context.Context, string) error { return errors.New("content altered") }
	if _, err := l.Deploy(ctx, bad); err == nil || !strings.Contains(err.Error(), "fetch fraud 1.3.0 (sha256:") {
		t.Fatalf("error %v", err)
	}
	if now, _ := l.Status(ctx, "api"); now.Version != "1.0.0" {
		t.Fatalf("status %+v", now)
	}
}

func TestDeployDeclaredPort(t *testing.T) {
	ctx := context.Background()
	l := newLocal(t)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	if _, err := l.Deploy(ctx, target(t, "api", "1.0.0", "weights 1", "ok", port)); err != nil {
		t.Fatal(err)
	}
	// The old process holds the port: it is stopped for the new one, and
	// started again when the new one fails.
	_, err = l.Deploy(ctx, target(t, "api", "1.1.0", "weights 2", "exit", port))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("api 1.0.0 serves again on port %d", port)) {
		t.Fatalf("error %v", err)
	}
	if got := predict(t, url); got != "weights 1" {
		t.Fatalf("predict %q", got)
	}
	st, err := l.Deploy(ctx, target(t, "api", "1.1.0", "weights 2", "ok", port))
	if err != nil || st.URL != url {
		t.Fatalf("%+v %v", st, err)
	}
	if got := predict(t, url); got != "weights 2" {
		t.Fatalf("predict %q", got)
	}
}

func TestDeployExitedProcess(t *testing.T) {
	ctx := context.Background()
	l := newLocal(t)
	st, err := l.Deploy(ctx, target(t, "api", "1.0.0", "weights 1", "ok", 0))
	if err != nil {
		t.Fatal(err)
	}
	l.kill(&record{Status: *st})
	now, err := l.Status(ctx, "api")
	if err != nil || now.State != Exited {
		t.Fatalf("status %+v %v", now, err)
	}
	// A port nothing listens on: alive, but not ready.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	if ready(ctx, ln.Addr().(*net.TCPAddr).Port, "/healthz") {
		t.Fatal("a port that answers no HTTP is ready")
	}
}
