package progress

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// events is an apply of three steps as apply reports it: prep cached,
// train and eval run, eval fails.
var events = []Event{
	{Step: "p.prep", State: Cached},
	{Step: "p.train", State: Waiting},
	{Step: "p.eval", State: Waiting},
	{Step: "p.train", State: Running, Line: "+ p.train running"},
	{Step: "p.train", State: Note, Line: "~ p.train retrying (attempt 2 of 2) after 1s"},
	{Step: "p.train", State: Succeeded, Line: "✓ p.train succeeded in 1.2s"},
	{Step: "p.eval", State: Running, Line: "~ p.eval running"},
	{Step: "p.eval", State: Failed, Line: "✗ p.eval failed after 3ms: exit status 1"},
	{State: Note, Line: "+ model m 3 sha256:ab"},
}

const plainGolden = `+ p.train running
~ p.train retrying (attempt 2 of 2) after 1s
✓ p.train succeeded in 1.2s
~ p.eval running
✗ p.eval failed after 3ms: exit status 1
+ model m 3 sha256:ab
`

func TestPlainPrintsTheLinesAlone(t *testing.T) {
	var b bytes.Buffer
	var writes int
	w := writerFunc(func(p []byte) (int, error) {
		writes++
		return b.Write(p)
	})
	for _, e := range events {
		Plain{W: w}.Report(e)
	}
	if b.String() != plainGolden {
		t.Errorf("plain output:\n%s\nwant:\n%s", b.String(), plainGolden)
	}
	// One write a line: concurrent steps' lines are never mixed.
	if writes != strings.Count(plainGolden, "\n") {
		t.Errorf("%d writes for %d lines", writes, strings.Count(plainGolden, "\n"))
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// clock is a fake time, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// screen interprets what Terminal writes, as a terminal would, for the
// escapes it uses: CR, LF, cursor up (CSI n A), erase below (CSI J) and
// erase to the end of the line (CSI K).
type screen struct {
	lines []string
	row   int
}

var csi = regexp.MustCompile(`^\x1b\[(\d*)([AJK])`)

func (s *screen) Write(p []byte) (int, error) {
	in := string(p)
	for len(in) > 0 {
		if m := csi.FindStringSubmatch(in); m != nil {
			n, _ := strconv.Atoi(m[1])
			switch m[2] {
			case "A":
				s.row = max(0, s.row-n)
			case "J":
				s.lines = s.lines[:min(s.row, len(s.lines))]
			case "K":
			}
			in = in[len(m[0]):]
			continue
		}
		switch in[0] {
		case '\r':
		case '\n':
			s.row++
		default:
			i := strings.IndexAny(in, "\r\n\x1b")
			if i < 0 {
				i = len(in)
			}
			for len(s.lines) <= s.row {
				s.lines = append(s.lines, "")
			}
			s.lines[s.row] += in[:i]
			in = in[i:]
			continue
		}
		in = in[1:]
	}
	return len(p), nil
}

func (s *screen) String() string {
	return strings.Join(s.lines[:min(s.row, len(s.lines))], "\n") + "\n"
}

// newTest is a Terminal on a screen of width columns, with a fake clock
// and no ticker: the test draws with redraw.
func newTest(width int) (*Terminal, *screen, *clock) {
	s := &screen{}
	c := &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	return newTerminal(s, func() int { return width }, c.now), s, c
}

func TestTerminalBlock(t *testing.T) {
	term, scr, clk := newTest(80)
	for _, e := range events[:4] {
		term.Report(e)
	}
	clk.add(2500 * time.Millisecond)
	io.WriteString(term, "[train] epoch 1\n[train] ep")
	io.WriteString(term, "och 2\n")
	term.Meter().Hashed(3 << 20)
	term.Meter().ToPush(1 << 30)
	clk.add(time.Second)
	term.redraw()
	term.Meter().Pushed(96 << 20)
	clk.add(2 * time.Second)
	term.redraw()
	want := `+ p.train running
[train] epoch 1
[train] epoch 2
  running p.train  5.5s
steps: 0 done, 1 cached, 0 failed, 1 running, 1 waiting  5.5s
hashed 3.0 MiB, pushed 96 MiB of 1.0 GiB, 48 MiB/s
`
	if got := scr.String(); got != want {
		t.Errorf("screen:\n%s\nwant:\n%s", got, want)
	}

	// A step that ends scrolls above the block as its plain line; the
	// block follows the new states.
	for _, e := range events[4:8] {
		clk.add(50 * time.Millisecond)
		term.Report(e)
	}
	clk.add(time.Second)
	term.redraw()
	want = `+ p.train running
[train] epoch 1
[train] epoch 2
~ p.train retrying (attempt 2 of 2) after 1s
✓ p.train succeeded in 1.2s
~ p.eval running
✗ p.eval failed after 3ms: exit status 1
steps: 1 done, 1 cached, 1 failed  6.7s
hashed 3.0 MiB, pushed 96 MiB of 1.0 GiB, 30 MiB/s
`
	if got := scr.String(); got != want {
		t.Errorf("screen:\n%s\nwant:\n%s", got, want)
	}

	// Closed: the block gives way to a summary, output after it is
	// plain.
	term.Report(events[8])
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	term.Report(Event{Line: "after"})
	want = plainGolden[:strings.Index(plainGolden, "~ p.train retrying")] + `[train] epoch 1
[train] epoch 2
` + plainGolden[strings.Index(plainGolden, "~ p.train retrying"):] +
		"steps: 1 done, 1 cached, 1 failed; hashed 3.0 MiB; pushed 96 MiB in 6.7s\nafter\n"
	if got := scr.String(); got != want {
		t.Errorf("screen after Close:\n%s\nwant:\n%s", got, want)
	}
}

func TestTerminalRedrawsAtMostEveryRedraw(t *testing.T) {
	term, _, clk := newTest(80)
	var frames int
	term.out = writerFunc(func(p []byte) (int, error) {
		frames += strings.Count(string(p), "steps: ")
		return len(p), nil
	})
	term.Report(Event{Step: "p.a", State: Running, Line: "+ p.a running"})
	for range 100 {
		clk.add(time.Millisecond)
		io.WriteString(term, "[a] line\n")
	}
	// 100 lines in 100 ms: the block drawn with the first, and once more
	// when Redraw has passed.
	if frames != 2 {
		t.Errorf("%d frames drawn for 100 lines in 100ms, want 2", frames)
	}
}

func TestTerminalTruncatesTheBlockToTheWidth(t *testing.T) {
	term, scr, clk := newTest(20)
	for i, name := range []string{"pipeline.a-very-long-step-name", "p.b"} {
		clk.add(time.Duration(i) * time.Second)
		term.Report(Event{Step: name, State: Running})
	}
	term.Meter().Pulled(5000)
	term.redraw()
	for _, l := range scr.lines {
		if n := len([]rune(l)); n >= 20 {
			t.Errorf("line %q is %d columns on a 20-column screen", l, n)
		}
	}
	want := "  running pipeline…\n  running p.b     …\nsteps: 0 done, 0 c…\npulled 4.9 KiB\n"
	if got := scr.String(); got != want {
		t.Errorf("screen:\n%s\nwant:\n%s", got, want)
	}
}

func TestTerminalListsAtMostMaxRunning(t *testing.T) {
	term, scr, _ := newTest(80)
	for i := range maxRunning + 3 {
		term.Report(Event{Step: "p.s" + strconv.Itoa(i+10), State: Running})
	}
	term.Report(Event{Step: "p.q", State: Queued})
	term.redraw()
	out := scr.String()
	if n := strings.Count(out, "  running p.s"); n != maxRunning-1 {
		t.Errorf("%d running lines, want %d:\n%s", n, maxRunning-1, out)
	}
	if !strings.Contains(out, "  queued  p.q") || !strings.Contains(out, "  … and 4 more\n") || !strings.Contains(out, ", 1 queued, 11 running  ") {
		t.Errorf("screen:\n%s", out)
	}
}

func TestTerminalTicks(t *testing.T) {
	var mu sync.Mutex
	var b bytes.Buffer
	term := NewTerminal(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return b.Write(p)
	}))
	term.Report(Event{Step: "p.a", State: Running, Line: "+ p.a running"})
	// Drawn again on its own while nothing is reported.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := strings.Count(b.String(), "  running p.a")
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the block was drawn %d times in 10s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	term.Close()
	term.Close()
}

func TestMeterCountsReads(t *testing.T) {
	var m Meter
	ctx := NewContext(context.Background(), &m)
	got := FromContext(ctx)
	n, err := io.Copy(io.Discard, got.Reader(strings.NewReader(strings.Repeat("x", 3000)), got.Pushed))
	if err != nil || n != 3000 {
		t.Fatal(n, err)
	}
	got.Hashed(7)
	got.ToPush(3000)
	got.Pulled(1)
	if b := m.Bytes(); b != (Bytes{Hashed: 7, Pushed: 3000, ToPush: 3000, Pulled: 1}) {
		t.Errorf("counted %+v", b)
	}
	// Without a meter nothing is counted, and the reader is r itself.
	var none *Meter
	r := strings.NewReader("y")
	if FromContext(context.Background()) != nil || none.Reader(r, none.Pulled) != r {
		t.Error("a missing meter is not nil, or wraps the reader")
	}
	none.Hashed(1)
	if none.Bytes() != (Bytes{}) {
		t.Error("a nil meter counted")
	}
}

func TestFormats(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1536, "1.5 KiB"}, {312 << 20, "312 MiB"}, {1288490188, "1.2 GiB"}} {
		if got := Size(c.n); got != c.want {
			t.Errorf("Size(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{-time.Second, "0.0s"}, {430 * time.Millisecond, "0.4s"}, {12345 * time.Millisecond, "12.3s"}, {245 * time.Second, "4m05s"}, {7380 * time.Second, "2h03m"}} {
		if got := Elapsed(c.d); got != c.want {
			t.Errorf("Elapsed(%s) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestParseModeAndOpen(t *testing.T) {
	for _, s := range []string{"auto", "tty", "plain"} {
		if m, err := ParseMode(s); err != nil || string(m) != s {
			t.Errorf("ParseMode(%q) = %q, %v", s, m, err)
		}
	}
	if _, err := ParseMode("fancy"); err == nil || err.Error() != `--progress "fancy": want auto, tty or plain` {
		t.Errorf("ParseMode(fancy): %v", err)
	}
	var b bytes.Buffer
	if Open(&b, ModeAuto) != nil || Open(&b, ModePlain) != nil {
		t.Error("progress on a buffer in auto or plain mode is not plain")
	}
	term := Open(&b, ModeTTY)
	if term == nil {
		t.Fatal("--progress tty gave no terminal")
	}
	term.Close()
}

// BenchmarkMeterReader reads 64 MiB through a counting reader, as a push
// reads a blob, and without one: the counting must cost next to nothing
// beside the copy.
func BenchmarkMeterReader(b *testing.B) {
	buf := make([]byte, 64<<20)
	for _, c := range []struct {
		name string
		m    *Meter
	}{{"none", nil}, {"counted", &Meter{}}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				r := c.m.Reader(bytes.NewReader(buf), c.m.Pushed)
				if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, make([]byte, 32<<10)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
