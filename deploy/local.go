package deploy

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zen-dev/zen/apply"
	"github.com/zen-dev/zen/internal/wait"
)

// Local serves each deployment as a process of this machine, detached
// from zen (its own session), so that it outlives the command that
// started it. What it serves is kept in Dir, one folder a deployment:
//
//	<Dir>/<name>/deployment.json   the Status and Target of the process
//	<Dir>/<name>/lock              taken while the deployment changes
//	<Dir>/<name>/<release>/model   the version's files ($ZEN_MODEL)
//	<Dir>/<name>/<release>/serve.log
//
// A process is machine-local: none of it is recorded on the state ref.
type Local struct {
	// Dir holds the deployments' folders: .zen/deployments.
	Dir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// record is deployment.json: what serves the deployment, and how it was
// started, so that it can be started again from its folder.
type record struct {
	Status  Status `json:"status"`
	Target  Target `json:"target"`
	Release string `json:"release"`
	Port    int    `json:"port"`
	// StartTime is the process's start time as /proc/PID/stat says it
	// (clock ticks since boot): a PID the system gave to another process
	// since is not this one, and is never signalled.
	StartTime uint64 `json:"start_time"`
}

// pollEvery is how often a starting process is probed.
const pollEvery = 50 * time.Millisecond

// stopGrace is how long a process has to exit after SIGTERM before it is
// killed.
const stopGrace = 5 * time.Second

// Status implements Deployer.
func (l *Local) Status(ctx context.Context, name string) (*Status, error) {
	rec, err := l.read(name)
	if err != nil || rec == nil {
		return nil, err
	}
	return l.probe(ctx, rec), nil
}

// List implements Deployer.
func (l *Local) List(ctx context.Context) ([]*Status, error) {
	entries, err := os.ReadDir(l.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Status
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		st, err := l.Status(ctx, e.Name())
		if err != nil {
			return nil, err
		}
		if st != nil {
			out = append(out, st)
		}
	}
	return out, nil
}

// Deploy implements Deployer. A new release gets the version's files and
// a process; once that process is ready, the deployment's record names it
// and the process it replaces is stopped. Without a declared port the new
// process listens on a free port, so the old one serves until the switch.
// With one, the old process holds the port: it is stopped first, and
// started again from its folder when the new one does not become ready.
func (l *Local) Deploy(ctx context.Context, t *Target) (*Status, error) {
	unlock, err := l.lock(t.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	old, err := l.read(t.Name)
	if err != nil {
		return nil, err
	}
	if old != nil && !alive(old.Status.PID, old.StartTime) {
		old = nil // exited: its folder goes with the switch below
	}
	release := fmt.Sprintf("%s-%d", shortDigest(t.Digest), time.Now().UnixNano())
	dir := filepath.Join(l.Dir, t.Name, release)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := t.Fetch(ctx, filepath.Join(dir, "model")); err != nil {
		removeAll(dir)
		return nil, fmt.Errorf("fetch %s %s (%s): %w", t.Model, t.Version, t.Digest, err)
	}
	readOnly(filepath.Join(dir, "model"))
	port := t.Port
	sameProcessPort := old != nil && port != 0 && old.Port == port
	if sameProcessPort {
		l.progress("stopping %s %s on port %d to start %s there", t.Name, old.Status.Version, port, t.Version)
		l.kill(old)
	}
	if port == 0 {
		if port, err = freePort(); err != nil {
			removeAll(dir)
			return nil, err
		}
	}
	rec, err := l.start(ctx, t, release, port)
	if err != nil {
		removeAll(dir)
		var se *startError
		if !errors.As(err, &se) {
			return nil, err
		}
		switch {
		case sameProcessPort:
			if back, rerr := l.start(context.WithoutCancel(ctx), &old.Target, old.Release, old.Port); rerr == nil {
				_ = l.write(back)
				se.what += fmt.Sprintf("; %s %s serves again on port %d", t.Name, old.Status.Version, port)
			} else {
				se.what += fmt.Sprintf("; and %s %s did not start again: %v", t.Name, old.Status.Version, rerr)
			}
		case old != nil:
			se.what += fmt.Sprintf("; %s %s still serves at %s", t.Name, old.Status.Version, old.Status.URL)
		}
		return nil, se
	}
	if err := l.write(rec); err != nil {
		l.kill(rec)
		removeAll(dir)
		return nil, err
	}
	l.clean(t.Name, release, old)
	return &rec.Status, nil
}

// clean stops the process old (the one replaced), and removes every
// release folder of the deployment but keep.
func (l *Local) clean(name, keep string, old *record) {
	if old != nil && old.Release != keep {
		l.kill(old)
	}
	entries, _ := os.ReadDir(filepath.Join(l.Dir, name))
	for _, e := range entries {
		if e.IsDir() && e.Name() != keep {
			removeAll(filepath.Join(l.Dir, name, e.Name()))
		}
	}
}

// Stop implements Deployer: the process is stopped and the deployment's
// folder, its log with it, removed.
func (l *Local) Stop(ctx context.Context, name string) error {
	unlock, err := l.lock(name)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := l.read(name)
	if err != nil {
		return err
	}
	if rec != nil {
		l.kill(rec)
	}
	return removeAllErr(filepath.Join(l.Dir, name))
}

// Logs implements Deployer.
func (l *Local) Logs(ctx context.Context, name string, w io.Writer, follow bool) error {
	rec, err := l.read(name)
	if err != nil {
		return err
	}
	if rec == nil {
		return fmt.Errorf("deployment %s serves nothing on this machine", name)
	}
	f, err := os.Open(rec.Status.Log)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		if !follow {
			return nil
		}
		if err := wait.Sleep(ctx, 200*time.Millisecond); err != nil {
			return nil // stopped following
		}
		if now, err := l.read(name); err != nil || now == nil || now.Release != rec.Release {
			return nil // stopped, or replaced by another release
		}
	}
}

// start starts t's process from the release folder, listening on port,
// and waits until it is ready: it answers its health check, or accepts
// connections. A process that exits first, or is not ready in time, is
// an error with the last lines of its log; one not ready is stopped.
func (l *Local) start(ctx context.Context, t *Target, release string, port int) (*record, error) {
	dir := filepath.Join(l.Dir, t.Name, release)
	logPath := filepath.Join(dir, "serve.log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	model := filepath.Join(dir, "model")
	env := []string{
		"ZEN_MODEL=" + model,
		"PORT=" + strconv.Itoa(port),
		"ZEN_DEPLOYMENT=" + t.Name,
		"ZEN_MODEL_NAME=" + t.Model,
		"ZEN_MODEL_VERSION=" + t.Version,
		"ZEN_MODEL_DIGEST=" + t.Digest,
	}
	for _, k := range sortedKeys(t.Env) {
		env = append(env, k+"="+t.Env[k])
	}
	container := ""
	if t.Image != "" {
		container = apply.ServeContainerName(t.Name, release)
	}
	sp := apply.Serve(t.Root, t.Run, env, t.Image, container, []string{dir})
	cmd := exec.Command(sp.Argv[0], sp.Argv[1:]...)
	cmd.Dir, cmd.Env = t.Root, sp.Env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session: the process outlives zen, and Ctrl-C in zen's
	// terminal does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("deployment %s: start %s: %w", t.Name, strings.Join(t.Run, " "), err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pid := cmd.Process.Pid
	rec := &record{
		Target: *t, Release: release, Port: port, StartTime: startTime(pid),
		Status: Status{
			Name: t.Name, Model: t.Model, Stage: t.Stage, Version: t.Version, Digest: t.Digest, Spec: t.Spec,
			URL: fmt.Sprintf("http://127.0.0.1:%d", port), State: Running, Started: time.Now().UTC().Truncate(time.Second),
			PID: pid, Container: sp.Container, Log: logPath, Image: t.Image,
		},
	}
	rec.Target.Fetch = nil
	timeout := t.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	deadline := time.Now().Add(timeout)
	what := fmt.Sprintf("deployment %s: %s", t.Name, strings.Join(t.Run, " "))
	for {
		select {
		case err := <-exited:
			if sp.Container != "" {
				apply.RemoveContainer(sp.Container)
			}
			return nil, &startError{fmt.Sprintf("%s exited before it was ready (%v)", what, exitText(err)), logTail(logPath)}
		default:
		}
		if ready(ctx, port, t.Health) {
			return rec, nil
		}
		if time.Now().After(deadline) {
			l.kill(rec)
			check := fmt.Sprintf("port %d accepted no connection", port)
			if t.Health != "" {
				check = fmt.Sprintf("%s did not answer 2xx on port %d", t.Health, port)
			}
			return nil, &startError{fmt.Sprintf("%s was not ready within %s: %s", what, timeout, check), logTail(logPath)}
		}
		if err := wait.Sleep(ctx, pollEvery); err != nil {
			l.kill(rec)
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
}

// startError is a serving process that did not become ready: what
// happened, then the end of its log.
type startError struct{ what, tail string }

func (e *startError) Error() string { return e.what + e.tail }

// probe says how rec's process is: exited, running (ready), or unhealthy.
func (l *Local) probe(ctx context.Context, rec *record) *Status {
	st := rec.Status
	switch {
	case !alive(st.PID, rec.StartTime):
		st.State = Exited
	case ready(ctx, rec.Port, rec.Target.Health):
		st.State = Running
	default:
		st.State = Unhealthy
	}
	return &st
}

// kill stops rec's process: SIGTERM to its process group (its session),
// SIGKILL after stopGrace, then its container, if it has one, removed.
// A PID that is no longer the process zen started is left alone.
func (l *Local) kill(rec *record) {
	pid := rec.Status.PID
	if alive(pid, rec.StartTime) {
		_ = unix.Kill(-pid, unix.SIGTERM)
		deadline := time.Now().Add(stopGrace)
		for alive(pid, rec.StartTime) && time.Now().Before(deadline) {
			time.Sleep(pollEvery)
		}
		if alive(pid, rec.StartTime) {
			_ = unix.Kill(-pid, unix.SIGKILL)
		}
	}
	if rec.Status.Container != "" {
		apply.RemoveContainer(rec.Status.Container)
	}
}

func (l *Local) progress(format string, args ...any) {
	if l.Log != nil {
		fmt.Fprintf(l.Log, format+"\n", args...)
	}
}

// lock takes the deployment's lock, which the kernel releases if zen
// dies, making its folder.
func (l *Local) lock(name string) (func(), error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	dir := filepath.Join(l.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("deployment %s: lock: %w", name, err)
	}
	return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

// read reads a deployment's record; nil when it has none.
func (l *Local) read(name string) (*record, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(l.Dir, name, "deployment.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("deployment %s: %s: %w", name, filepath.Join(l.Dir, name, "deployment.json"), err)
	}
	return &rec, nil
}

// write replaces a deployment's record whole (a new file renamed over
// it), so that a reader never sees half of one.
func (l *Local) write(rec *record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(l.Dir, rec.Status.Name, "deployment.json")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// checkName refuses a name that is not one folder: names come from the
// CUE, where the name rule holds, and from the command line.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("%q is not a deployment name", name)
	}
	return nil
}

// ready probes the process on port: its health path answers 2xx, or,
// without one, the port accepts a connection.
func ready(ctx context.Context, port int, health string) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if health == "" {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+health, nil)
	if err != nil {
		return false
	}
	res, err := probeClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
	res.Body.Close()
	return res.StatusCode >= 200 && res.StatusCode < 300
}

// probeClient never follows redirects, never uses a proxy, and keeps no
// connections: a probe is one request to a loopback port.
var probeClient = &http.Client{
	Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// freePort asks the kernel for a free port on loopback.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// alive reports whether pid is the process that started at start (as
// /proc says) and has not exited (a zombie has).
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	state, st, ok := procStat(pid)
	return ok && state != 'Z' && state != 'X' && (start == 0 || st == start)
}

// startTime is the start time /proc gives pid, 0 when it cannot tell.
func startTime(pid int) uint64 {
	_, st, _ := procStat(pid)
	return st
}

// procStat reads a process's state and start time from /proc/PID/stat:
// fields 3 and 22, counted after the command name, which is in
// parentheses and may hold spaces.
func procStat(pid int) (state byte, start uint64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, false
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return f[0][0], start, err == nil
}

// exitText says how a process ended, from cmd.Wait's error.
func exitText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by signal " + strings.TrimPrefix(unix.SignalName(ws.Signal()), "SIG")
		}
		return fmt.Sprintf("exit code %d", ee.ExitCode())
	}
	if err == nil {
		return "exit code 0"
	}
	return err.Error()
}

// tailLines is how many lines of a log an error shows.
const tailLines = 10

// logTail is the last lines of the log at p, for an error: "; its log
// ends:\n  …", or "; its log is empty". The log goes with the release
// that failed, so the error holds what it says.
func logTail(p string) string {
	b, err := os.ReadFile(p)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return "; its log is empty"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return "; its log ends:\n  " + strings.Join(lines, "\n  ")
}

func shortDigest(d string) string {
	h := strings.TrimPrefix(d, "sha256:")
	if _, err := hex.DecodeString(h); err != nil || len(h) < 12 {
		return "unknown"
	}
	return h[:12]
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// readOnly makes the files of a version read-only: every release serves
// the bytes that verified.
func readOnly(p string) {
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			// Its entries can still be changed by their owner: chmod
			// needs no write permission on the folder.
			return os.Chmod(q, 0o555)
		}
		return os.Chmod(q, 0o444)
	})
}

// removeAll removes a folder whose content was made read-only.
func removeAll(dir string) { _ = removeAllErr(dir) }

func removeAllErr(dir string) error {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
