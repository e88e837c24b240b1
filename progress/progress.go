// Package progress shows long work to people: what became of each step of
// an apply, and the bytes hashed, pushed and pulled on the way.
//
// The work reports Events to a Sink and counts bytes on a Meter. Plain
// prints each event's line and nothing else: what zen prints when stderr
// is not a terminal. Terminal keeps, below the lines, a status block
// redrawn in place: the steps running with their elapsed time, the
// counts of steps by state, and the bytes with a rate.
package progress

import (
	"fmt"
	"io"
	"os"
)

// State is what a step is doing, as an Event reports it.
type State int

const (
	// Note changes no step's state: a line about the apply as a whole,
	// or about a step that goes on as it was (a retry, a warning, a
	// job's state on the cluster).
	Note State = iota
	// Waiting: the step is to run once the steps it reads from end.
	Waiting
	// Queued: submitted to a cluster, not started.
	Queued
	// Running: the step runs.
	Running
	// Succeeded, Failed, Cached and NotRun end a step. A cancelled step
	// counts as failed.
	Succeeded
	Failed
	Cached
	NotRun
)

// done reports whether s ends a step.
func (s State) done() bool { return s >= Succeeded }

// An Event is one thing that happened to a step, or to the work as a
// whole.
type Event struct {
	// Step names the step ("pipeline.step"); "" for the work as a whole.
	Step string
	// State is the step's state from now on; Note leaves it as it was.
	State State
	// Line is the line for people, without its newline, as plain output
	// prints it; "" prints none (a step that waits, say).
	Line string
}

// A Sink receives the events of long work. Its methods are safe for
// concurrent use.
type Sink interface {
	Report(Event)
}

// Plain is the Sink that prints each event's line to W, in one write,
// and nothing else. W must take concurrent writes if the sink is used
// concurrently.
type Plain struct{ W io.Writer }

// Report prints e's line.
func (p Plain) Report(e Event) {
	if e.Line != "" {
		_, _ = io.WriteString(p.W, e.Line+"\n")
	}
}

// Mode says how progress is shown: Auto, TTY or Plain.
type Mode string

const (
	// ModeAuto is ModeTTY on a terminal whose TERM is not "dumb", else
	// ModePlain.
	ModeAuto Mode = "auto"
	// ModeTTY keeps a status block, redrawn in place, below the lines.
	ModeTTY Mode = "tty"
	// ModePlain prints the lines alone.
	ModePlain Mode = "plain"
)

// ParseMode reads the value of a --progress flag.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeAuto, ModeTTY, ModePlain:
		return m, nil
	}
	return "", fmt.Errorf("--progress %q: want auto, tty or plain", s)
}

// Open returns the Terminal that shows progress on w in mode m, or nil
// when progress is to be plain lines: in ModePlain, and in ModeAuto
// unless w is a terminal and TERM is not "dumb". The caller closes it.
func Open(w io.Writer, m Mode) *Terminal {
	switch m {
	case ModePlain:
		return nil
	case ModeAuto:
		if !IsTerminal(w) || os.Getenv("TERM") == "dumb" {
			return nil
		}
	}
	return NewTerminal(w)
}
