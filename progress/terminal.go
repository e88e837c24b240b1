package progress

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// Redraw is how often at most a Terminal redraws its block on its own:
// ten times a second.
const Redraw = 100 * time.Millisecond

// rateWindow is how far back the rate of bytes moved is measured.
const rateWindow = 2 * time.Second

// maxRunning is how many running steps the block lists; the others are
// counted on a line of their own.
const maxRunning = 8

// Terminal shows progress on a terminal: the lines of the events and
// whatever is written to it (the steps' output) scroll above a status
// block, redrawn in place at most every Redraw:
//
//	  running pipeline.train  12.3s
//	  queued  pipeline.eval   (job 41)  2.0s
//	steps: 2 done, 1 cached, 0 failed, 1 running, 3 waiting  14.2s
//	hashed 1.2 GiB, pushed 312 MiB of 1.2 GiB, 48 MiB/s
//
// Close clears the block and leaves a summary line. It uses no colour.
// Its methods are safe for concurrent use.
type Terminal struct {
	out   io.Writer
	width func() int // columns; 0 when unknown
	now   func() time.Time
	meter Meter

	mu       sync.Mutex
	start    time.Time
	steps    map[string]*step
	drawn    int       // lines of the block on the screen
	lastDraw time.Time // of the block
	partial  []byte    // output not yet ended by a newline
	samples  []sample  // bytes moved, by time, for the rate
	closed   bool

	stop chan struct{}
	done chan struct{}
}

type step struct {
	state State
	since time.Time // when it took its state
}

type sample struct {
	at    time.Time
	bytes int64
}

// NewTerminal returns a Terminal drawing on w, a terminal, and redrawing
// on its own every Redraw until it is closed.
func NewTerminal(w io.Writer) *Terminal {
	t := newTerminal(w, func() int { return Width(w) }, time.Now)
	t.stop, t.done = make(chan struct{}), make(chan struct{})
	go t.tick()
	return t
}

func newTerminal(w io.Writer, width func() int, now func() time.Time) *Terminal {
	return &Terminal{out: w, width: width, now: now, start: now(), steps: map[string]*step{}}
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Width is w's width in columns, 0 if w is not a terminal.
func Width(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	cols, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return cols
}

func (t *Terminal) tick() {
	defer close(t.done)
	tk := time.NewTicker(Redraw)
	defer tk.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tk.C:
			t.redraw()
		}
	}
}

// redraw draws the block again, as the elapsed times and the bytes moved
// since the last draw make it, unless the Terminal is closed.
func (t *Terminal) redraw() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	var b bytes.Buffer
	t.clear(&b)
	t.draw(&b)
	if b.Len() > 0 {
		_, _ = t.out.Write(b.Bytes())
	}
}

// Meter is what counts the bytes the block shows.
func (t *Terminal) Meter() *Meter { return &t.meter }

// Report prints e's line above the block and takes the step's new state.
func (t *Terminal) Report(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.Step != "" && e.State != Note {
		s := t.steps[e.Step]
		if s == nil {
			s = &step{}
			t.steps[e.Step] = s
		}
		// A job seen running before its submission was reported
		// keeps the later state.
		if !(s.state == Running && e.State == Queued) && !s.state.done() {
			s.state, s.since = e.State, t.now()
		}
	}
	if e.Line == "" {
		return
	}
	t.above([]byte(e.Line + "\n"))
}

// Write prints b's whole lines above the block; a line's start waits for
// its end.
func (t *Terminal) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, b...)
	i := bytes.LastIndexByte(t.partial, '\n')
	if i < 0 {
		return len(b), nil
	}
	lines := t.partial[:i+1]
	t.above(lines)
	t.partial = append(t.partial[:0], t.partial[i+1:]...)
	return len(b), nil
}

// above writes lines above the block: the block is cleared, the lines
// written, and the block drawn again unless it was drawn less than
// Redraw ago (the ticker draws it then), all in one write. t.mu is held.
func (t *Terminal) above(lines []byte) {
	if t.closed {
		_, _ = t.out.Write(lines)
		return
	}
	var b bytes.Buffer
	t.clear(&b)
	b.Write(lines)
	if t.now().Sub(t.lastDraw) >= Redraw {
		t.draw(&b)
	}
	_, _ = t.out.Write(b.Bytes())
}

// clear writes what erases the block: the cursor is at the start of the
// line below it. t.mu is held.
func (t *Terminal) clear(b *bytes.Buffer) {
	if t.drawn > 0 {
		fmt.Fprintf(b, "\r\x1b[%dA\x1b[J", t.drawn)
		t.drawn = 0
	}
}

// draw writes the block, each line cut to the width. t.mu is held.
func (t *Terminal) draw(b *bytes.Buffer) {
	now := t.now()
	t.lastDraw = now
	lines := t.block(now)
	w := t.width()
	for _, l := range lines {
		b.WriteString(truncate(l, w))
		b.WriteString("\x1b[K\n")
	}
	t.drawn = len(lines)
}

// block is the status block's lines at now. t.mu is held.
func (t *Terminal) block(now time.Time) []string {
	var lines []string
	c := t.count()
	var active []string
	for name, s := range t.steps {
		if s.state == Running || s.state == Queued {
			active = append(active, name)
		}
	}
	// Longest running first, then by name.
	slices.SortFunc(active, func(a, b string) int {
		if c := t.steps[a].since.Compare(t.steps[b].since); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	nameW := 0
	for _, name := range active {
		nameW = max(nameW, utf8.RuneCountInString(name))
	}
	for i, name := range active {
		if i == maxRunning {
			lines = append(lines, fmt.Sprintf("  … and %d more", len(active)-maxRunning))
			break
		}
		s := t.steps[name]
		verb := "running"
		if s.state == Queued {
			verb = "queued "
		}
		lines = append(lines, fmt.Sprintf("  %s %-*s  %s", verb, nameW, name, Elapsed(now.Sub(s.since))))
	}
	if len(t.steps) > 0 {
		lines = append(lines, c.String()+"  "+Elapsed(now.Sub(t.start)))
	}
	if l := t.bytesLine(now); l != "" {
		lines = append(lines, l)
	}
	return lines
}

// counts are the steps by state.
type counts struct {
	done, cached, failed, notRun, running, queued, waiting int
}

// count counts the steps by state. t.mu is held.
func (t *Terminal) count() counts {
	var c counts
	for _, s := range t.steps {
		switch s.state {
		case Succeeded:
			c.done++
		case Cached:
			c.cached++
		case Failed:
			c.failed++
		case NotRun:
			c.notRun++
		case Running:
			c.running++
		case Queued:
			c.queued++
		case Waiting:
			c.waiting++
		}
	}
	return c
}

func (c counts) String() string {
	s := fmt.Sprintf("steps: %d done, %d cached, %d failed", c.done, c.cached, c.failed)
	for _, x := range []struct {
		n    int
		what string
	}{{c.notRun, "not run"}, {c.queued, "queued"}, {c.running, "running"}, {c.waiting, "waiting"}} {
		if x.n > 0 {
			s += fmt.Sprintf(", %d %s", x.n, x.what)
		}
	}
	return s
}

// bytesLine says what the meter counted, with the rate of the bytes
// pushed and pulled over the last rateWindow; "" before any. t.mu is
// held.
func (t *Terminal) bytesLine(now time.Time) string {
	m := t.meter.Bytes()
	moved := m.Pushed + m.Pulled
	t.samples = append(t.samples, sample{now, moved})
	i := 0
	for i < len(t.samples)-1 && now.Sub(t.samples[i+1].at) >= rateWindow {
		i++
	}
	t.samples = t.samples[i:]
	var parts []string
	if m.Hashed > 0 {
		parts = append(parts, "hashed "+Size(m.Hashed))
	}
	if m.Pushed > 0 || m.ToPush > 0 {
		parts = append(parts, fmt.Sprintf("pushed %s of %s", Size(m.Pushed), Size(max(m.ToPush, m.Pushed))))
	}
	if m.Pulled > 0 {
		parts = append(parts, "pulled "+Size(m.Pulled))
	}
	if len(parts) == 0 {
		return ""
	}
	if first := t.samples[0]; now.Sub(first.at) > 0 && moved > first.bytes {
		rate := float64(moved-first.bytes) / now.Sub(first.at).Seconds()
		parts = append(parts, Size(int64(rate))+"/s")
	}
	return strings.Join(parts, ", ")
}

// Close stops the redrawing, clears the block and leaves a summary line
// of the steps and bytes, if there were any. Output not ended by a
// newline is written with one.
func (t *Terminal) Close() error {
	if t.stop != nil {
		close(t.stop)
		<-t.done
		t.stop = nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	var b bytes.Buffer
	t.clear(&b)
	if len(t.partial) > 0 {
		b.Write(t.partial)
		b.WriteByte('\n')
		t.partial = nil
	}
	if s := t.summary(t.now()); s != "" {
		b.WriteString(s + "\n")
	}
	t.closed = true
	_, err := t.out.Write(b.Bytes())
	return err
}

// summary is the line Close leaves. t.mu is held.
func (t *Terminal) summary(now time.Time) string {
	var parts []string
	if len(t.steps) > 0 {
		parts = append(parts, t.count().String())
	}
	m := t.meter.Bytes()
	if m.Hashed > 0 {
		parts = append(parts, "hashed "+Size(m.Hashed))
	}
	if m.Pushed > 0 {
		parts = append(parts, "pushed "+Size(m.Pushed))
	}
	if m.Pulled > 0 {
		parts = append(parts, "pulled "+Size(m.Pulled))
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, "; ") + " in " + Elapsed(now.Sub(t.start))
}

// truncate cuts s to w-1 columns, counting a rune as a column, so that
// the terminal never wraps a line of the block; w 0 cuts nothing.
func truncate(s string, w int) string {
	if w <= 1 || utf8.RuneCountInString(s) < w {
		return s
	}
	r := []rune(s)
	return string(r[:w-2]) + "…"
}

// Elapsed is d as the block shows it: 0.4s, 12.3s, 4m05s, 2h03m.
func Elapsed(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// Size is n bytes in binary units: 512 B, 1.2 KiB, 312 MiB, 1.2 GiB.
func Size(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	unit := ""
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		v /= 1024
		unit = u
		if v < 1024 {
			break
		}
	}
	if v < 10 {
		return fmt.Sprintf("%.1f %s", v, unit)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}
