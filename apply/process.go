package apply

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// killGrace is how long a step's processes get between SIGTERM and SIGKILL
// when the apply is cancelled.
var killGrace = 3 * time.Second

// process is one attempt of a step: a command in its own process group.
type process struct {
	argv    []string
	dir     string
	env     []string
	timeout time.Duration
	log     io.Writer // the step's log file, redacted
	stream  io.Writer // the terminal, or nil
	prefix  string
	redact  []string
	// exitSignals: an exit code of 128+N means the command was killed by
	// signal N (podman reports a container's end so).
	exitSignals bool
	// stopped runs after a timeout or a cancel killed the process (a
	// container's removal), before the output is read to its end.
	stopped func()
}

// outcome is how an attempt ended.
type outcome struct {
	exitCode  int            // 128+N when killed by signal N; -1 when zen killed it
	signal    syscall.Signal // the signal that killed it, 0 for none
	timedOut  bool           // killed by the step's timeout
	cancelled bool           // killed because the apply was cancelled
	err       error
}

func (o outcome) ok() bool { return o.err == nil && o.exitCode == 0 && !o.timedOut && !o.cancelled }

func (o outcome) String() string {
	switch {
	case o.cancelled:
		return "cancelled"
	case o.timedOut:
		return "timed out"
	case o.err != nil:
		return o.err.Error()
	case o.signal != 0:
		return fmt.Sprintf("killed by signal %s (exit code %d)", strings.TrimPrefix(unix.SignalName(o.signal), "SIG"), o.exitCode)
	default:
		return fmt.Sprintf("exited with code %d", o.exitCode)
	}
}

// run starts the process and waits for it. The whole process group is
// killed on timeout (SIGKILL) and on cancellation (SIGTERM, then SIGKILL
// after killGrace), so that no grandchild outlives the step.
func (p *process) run(ctx context.Context) outcome {
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw, err := os.Pipe()
	if err != nil {
		return outcome{exitCode: -1, err: err}
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		var ee *exec.Error
		if errors.As(err, &ee) {
			return outcome{exitCode: -1, err: fmt.Errorf("cannot run %q: %v", p.argv[0], ee.Err)}
		}
		return outcome{exitCode: -1, err: fmt.Errorf("cannot run %q: %v", p.argv[0], err)}
	}
	pw.Close()
	copied := make(chan struct{})
	go func() {
		p.copyLines(pr)
		close(copied)
	}()

	var timer <-chan time.Time
	if p.timeout > 0 {
		t := time.NewTimer(p.timeout)
		defer t.Stop()
		timer = t.C
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	pgid := cmd.Process.Pid
	var out outcome
	var werr error
	select {
	case werr = <-waited:
	case <-timer:
		out.timedOut = true
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		werr = <-waited
	case <-ctx.Done():
		out.cancelled = true
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case werr = <-waited:
		case <-time.After(killGrace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			werr = <-waited
		}
	}
	// Grandchildren may hold the pipe open: the group is gone by now or
	// was never ours to wait for; kill what is left so the copy ends.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if (out.timedOut || out.cancelled) && p.stopped != nil {
		p.stopped()
	}
	<-copied
	pr.Close()
	out.exitCode = cmd.ProcessState.ExitCode()
	if !out.timedOut && !out.cancelled {
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		switch {
		case ws.Signaled():
			out.signal, out.exitCode = ws.Signal(), 128+int(ws.Signal())
		case p.exitSignals && out.exitCode > 128 && out.exitCode <= 128+64:
			out.signal = syscall.Signal(out.exitCode - 128)
		}
	}
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		out.err = werr
	}
	return out
}

// copyLines writes the process output, line by line and with secrets
// redacted, to the log and (prefixed) to the terminal.
func (p *process) copyLines(r io.Reader) {
	br := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = redactBytes(line, p.redact)
			p.log.Write(line)
			if p.stream != nil {
				if line[len(line)-1] != '\n' {
					line = append(line, '\n')
				}
				p.stream.Write(append([]byte(p.prefix), line...))
			}
		}
		if err != nil {
			return
		}
	}
}

func redactBytes(b []byte, secrets []string) []byte {
	for _, s := range secrets {
		if s != "" {
			b = bytes.ReplaceAll(b, []byte(s), []byte("***"))
		}
	}
	return b
}

// Redact replaces every secret value in s with ***.
func Redact(s string, secrets []string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "***")
		}
	}
	return s
}

// lockedWriter serialises writes of whole lines from concurrent steps.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
