package testscript

// The browser command drives Debian's Chromium, headless, so that a script
// can check what a page served on loopback shows a person. One browser per
// script, started on the first browser line and closed when the script
// ends. Every subcommand that looks at the page polls, so a line after a
// click sees the page the click led to.
//
//	browser open URL              navigate and wait for the load event; retries
//	                              for up to 30 s while nothing answers at URL
//	                              (a server started with & may not be up yet);
//	                              fails on an HTTP status of 400 or more.
//	                              ! browser open URL: the page does not open
//	                              (an error status or a load error, printed
//	                              on stderr; no retry)
//	browser click SELECTOR        click the first visible element that matches
//	                              the CSS selector; when that starts a
//	                              navigation, wait for the new page to load
//	browser text SELECTOR REGEXP  the innerText of the first match matches
//	                              REGEXP, within 5 s; the negated form waits for
//	                              it not to match (the element must exist)
//	browser count SELECTOR N      exactly N elements match, within 5 s
//	browser url REGEXP            the page's location matches, within 5 s
//	browser screenshot FILE.png   a PNG of the whole page, written to FILE.png
//	                              and, where $ZEN_TEST_ARTIFACTS is set, copied
//	                              to $ZEN_TEST_ARTIFACTS/<script>/FILE.png
//	browser requests              print every URL the pages requested since the
//	                              browser started, once, in order (data: URLs
//	                              left out); fail if one was not on loopback
//	                              (127.0.0.1, localhost, [::1]; about: and
//	                              blob: URLs are local)
//	browser errors                print every uncaught exception and
//	                              console.error of the pages; fail if there
//	                              was one
//
// Every subcommand but click and screenshot can be negated with !: text,
// count and url then wait for the page not to match, requests and errors
// fail unless there was something to report.
//
// A request to any other host is seen and recorded, then failed in the
// browser (as blocked by the client), so a test never sends traffic off the
// machine.
//
// Helpers for the servers that the browser looks at:
//
//	httpserve VAR DIR   serve DIR over HTTP on 127.0.0.1 for the rest of the
//	                    script; set $VAR to its host:port
//	freeport VAR        (ui_test.go) set $VAR to a free port on 127.0.0.1
//	exec fileserver [-wait D] ADDR DIR &
//	                    a separate process that serves DIR at ADDR, after
//	                    waiting D (a duration) as a slow server would

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/rogpeppe/go-internal/testscript"
)

// chromiumFlags are the flags the browser runs with, besides a fresh
// --user-data-dir and the DevTools connection chromedp adds. They are
// exactly these, not chromedp's defaults: headless, no sandbox (the tests
// run as root in CI), no GPU, and none of the browser's own traffic.
var chromiumFlags = []string{
	"headless",
	"no-sandbox",
	"disable-gpu",
	"no-first-run",
	"disable-background-networking",
	"disable-component-update",
	"disable-sync",
}

// How long the browser command waits. A server started with & can take
// seconds to answer on a loaded machine (a python3 http.server took 11 s
// with 2 cores and a load of 13), so open waits longer than it should
// ever need to.
// The page's size: a laptop's screen rather than headless Chromium's
// 800×600, so that screenshots show pages as people see them. A full-page
// screenshot is as tall as the page.
const viewportWidth, viewportHeight = 1280, 800

// hostResolverRules make every host name but loopback's unknown to the
// browser. Despite the flags above, Chromium 156 still looks up
// clients2.google.com, accounts.google.com, update.googleapis.com and
// optimizationguide-pa.googleapis.com as it starts (seen with strace); with
// these rules it looks up nothing. The pages' requests never get that far:
// listen fails those off loopback first.
const hostResolverRules = "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]"

const (
	serverWait = 30 * time.Second // for a server to answer at all
	loadWait   = 10 * time.Second // for a page to load
	checkWait  = 5 * time.Second  // for text, count and url to hold
	stepWait   = 30 * time.Second // for any one call to the browser
	startWait  = 60 * time.Second // for Chromium to start
)

// browser is one script's Chromium and what its pages did.
type browser struct {
	ctx    context.Context // the tab
	cancel func()          // closes the tab, then the browser

	mu        sync.Mutex
	requests  []string // every URL requested, once, in order
	blocked   []string // those not on loopback
	errs      []string // uncaught exceptions and console.error calls
	mainFrame cdp.FrameID
	seq       int // counts the navigation events below
	navSeq    int // seq of the last navigation start of the main frame
	loadSeq   int // seq of the last load event
	sameDoc   int // seq of the last navigation within the document
}

var (
	browsersMu sync.Mutex
	browsers   = map[*testscript.TestScript]*browser{}
)

// chromium is where Chromium is installed, or "".
func chromium() string {
	for _, name := range []string{"chromium", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// scriptBrowser returns the script's browser, starting it on first use.
func scriptBrowser(ts *testscript.TestScript) *browser {
	browsersMu.Lock()
	b := browsers[ts]
	browsersMu.Unlock()
	if b != nil {
		return b
	}
	exe := chromium()
	if exe == "" {
		ts.Fatalf("browser: chromium is not installed (apt-get install chromium); guard the script with [browser]")
	}
	// The profile and the browser's own log live beside the work folder,
	// so that they never make a repository in it dirty.
	profile, err := os.MkdirTemp(ts.Getenv("HOME"), "chromium-profile-")
	ts.Check(err)
	logf, err := os.Create(filepath.Join(ts.Getenv("HOME"), "chromium.log"))
	ts.Check(err)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.CombinedOutput(logf),
	}
	for _, f := range chromiumFlags {
		opts = append(opts, chromedp.Flag(f, true))
	}
	opts = append(opts, chromedp.Flag("host-resolver-rules", hostResolverRules))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b = &browser{}
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(b.listen))
	b.ctx = ctx
	b.cancel = func() {
		cancelTab()
		cancelAlloc()
		logf.Close()
	}
	ts.Defer(func() {
		browsersMu.Lock()
		delete(browsers, ts)
		browsersMu.Unlock()
		b.cancel()
	})
	browsersMu.Lock()
	browsers[ts] = b
	browsersMu.Unlock()

	// The first call starts the browser and opens the tab; it must have no
	// deadline, which would close the browser when it passed.
	started := make(chan error, 1)
	go func() {
		// Every request pauses until listen's goroutine lets it go on or
		// fails it, so none leaves loopback.
		started <- chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, fetch.Enable, fetch.EnableParams{})
			return err
		}), chromedp.EmulateViewport(viewportWidth, viewportHeight))
	}()
	select {
	case err := <-started:
		if err != nil {
			ts.Fatalf("browser: starting %s: %v (its output is in %s)", exe, err, logf.Name())
		}
	case <-time.After(startWait):
		ts.Fatalf("browser: %s did not start within %v (its output is in %s)", exe, startWait, logf.Name())
	}
	return b
}

// listen records the tab's events. It runs in the tab's event loop, in
// the order the events came: it must return fast and send no command.
func (b *browser) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.request(ev.Request.URL)
	case *fetch.EventRequestPaused:
		local := localURL(ev.Request.URL)
		if ev.NetworkID == "" {
			b.request(ev.Request.URL) // not seen by the network events
		}
		go b.release(ev.RequestID, local)
	case *runtime.EventExceptionThrown:
		b.errs = append(b.errs, "uncaught: "+exceptionText(ev.ExceptionDetails))
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var args []string
			for _, a := range ev.Args {
				args = append(args, remoteText(a))
			}
			b.errs = append(b.errs, "console.error: "+strings.Join(args, " "))
		}
	case *page.EventFrameNavigated:
		if ev.Frame.ParentID == "" {
			b.mainFrame = ev.Frame.ID
		}
	case *page.EventFrameRequestedNavigation:
		b.navigating(ev.FrameID)
	case *page.EventFrameStartedNavigating:
		b.navigating(ev.FrameID)
	case *page.EventLoadEventFired:
		b.seq++
		b.loadSeq = b.seq
	case *page.EventNavigatedWithinDocument:
		b.seq++
		b.sameDoc = b.seq
	}
}

// request records a URL the first time a page asks for it. data: URLs
// (Chromium's own error page has images in them) go nowhere and are left
// out.
func (b *browser) request(u string) {
	if strings.HasPrefix(u, "data:") || slices.Contains(b.requests, u) {
		return
	}
	b.requests = append(b.requests, u)
	if !localURL(u) {
		b.blocked = append(b.blocked, u)
	}
}

func (b *browser) navigating(frame cdp.FrameID) {
	if b.mainFrame == "" || frame == b.mainFrame {
		b.seq++
		b.navSeq = b.seq
	}
}

// release lets a paused request go on if it is on loopback, and fails it
// otherwise.
func (b *browser) release(id fetch.RequestID, local bool) {
	ctx, cancel := context.WithTimeout(b.ctx, stepWait)
	defer cancel()
	if local {
		chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: id})
		return
	}
	chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: id, ErrorReason: network.ErrorReasonBlockedByClient})
}

// localURL reports whether a page's request stays on this machine.
func localURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "data", "about", "blob":
		return true
	case "http", "https", "ws", "wss":
		switch u.Hostname() {
		case "127.0.0.1", "localhost", "::1":
			return true
		}
	}
	return false
}

func exceptionText(d *runtime.ExceptionDetails) string {
	s := d.Text
	if d.Exception != nil && d.Exception.Description != "" {
		first, _, _ := strings.Cut(d.Exception.Description, "\n") // not the stack
		s += " " + first
	}
	if d.URL != "" {
		s += fmt.Sprintf(" (%s:%d)", d.URL, d.LineNumber+1)
	}
	return s
}

func remoteText(o *runtime.RemoteObject) string {
	var s string
	if len(o.Value) > 0 && json.Unmarshal(o.Value, &s) == nil {
		return s
	}
	if len(o.Value) > 0 {
		return string(o.Value)
	}
	return o.Description
}

// do runs one call to the browser with a deadline.
func do[T any](b *browser, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, stepWait)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// cmdBrowser is the browser command; the comment at the top of this file
// lists its subcommands.
func cmdBrowser(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: browser open|click|text|count|url|screenshot|requests|errors ...")
	}
	sub, args := args[0], args[1:]
	want := func(n int, usage string) {
		if len(args) != n {
			ts.Fatalf("usage: browser %s %s", sub, usage)
		}
	}
	if neg && (sub == "click" || sub == "screenshot") {
		ts.Fatalf("browser %s cannot be negated", sub)
	}
	switch sub {
	case "open":
		want(1, "URL")
		browserOpen(ts, scriptBrowser(ts), neg, args[0])
	case "click":
		want(1, "SELECTOR")
		browserClick(ts, scriptBrowser(ts), args[0])
	case "text":
		want(2, "SELECTOR REGEXP")
		re, err := regexp.Compile(args[1])
		ts.Check(err)
		b := scriptBrowser(ts)
		var last string
		poll(ts, neg, func() (bool, string) {
			t := pageText(ts, b, args[0])
			if !t.Found {
				return neg, fmt.Sprintf("no element matches %q", args[0])
			}
			last = t.Text
			return re.MatchString(t.Text), fmt.Sprintf("text of %q is %q", args[0], t.Text)
		})
		if !neg {
			fmt.Fprintln(ts.Stdout(), last)
		}
	case "count":
		want(2, "SELECTOR N")
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		b := scriptBrowser(ts)
		poll(ts, neg, func() (bool, string) {
			got := pageCount(ts, b, args[0])
			return got == n, fmt.Sprintf("%d elements match %q", got, args[0])
		})
	case "url":
		want(1, "REGEXP")
		re, err := regexp.Compile(args[0])
		ts.Check(err)
		b := scriptBrowser(ts)
		poll(ts, neg, func() (bool, string) {
			loc, err := do(b, chromedp.Location())
			ts.Check(err)
			return re.MatchString(loc), fmt.Sprintf("the page is at %s", loc)
		})
	case "screenshot":
		want(1, "FILE.png")
		browserScreenshot(ts, scriptBrowser(ts), args[0])
	case "requests":
		want(0, "")
		b := scriptBrowser(ts)
		b.mu.Lock()
		requests, blocked := append([]string(nil), b.requests...), append([]string(nil), b.blocked...)
		b.mu.Unlock()
		w := ts.Stdout() // what the script's stdout lines look at, empty or not
		for _, r := range requests {
			fmt.Fprintln(w, r)
		}
		if len(blocked) > 0 && !neg {
			ts.Fatalf("the pages requested %d URLs off loopback: %s", len(blocked), strings.Join(blocked, ", "))
		}
		if len(blocked) == 0 && neg {
			ts.Fatalf("the pages requested nothing off loopback")
		}
	case "errors":
		want(0, "")
		b := scriptBrowser(ts)
		b.mu.Lock()
		errs := append([]string(nil), b.errs...)
		b.mu.Unlock()
		w := ts.Stdout()
		for _, e := range errs {
			fmt.Fprintln(w, e)
		}
		if len(errs) > 0 && !neg {
			ts.Fatalf("the pages had %d errors: %s", len(errs), strings.Join(errs, "; "))
		}
		if len(errs) == 0 && neg {
			ts.Fatalf("the pages had no errors")
		}
	default:
		ts.Fatalf("unknown browser subcommand %q (open, click, text, count, url, screenshot, requests, errors)", sub)
	}
}

// browserOpen navigates to u. It retries while no server answers there,
// except in the negated form, which expects the page not to open: it
// passes on an HTTP error status or a load error, and prints which on
// stderr.
func browserOpen(ts *testscript.TestScript, b *browser, neg bool, u string) {
	deadline := time.Now().Add(serverWait)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, loadWait)
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(u))
		cancel()
		var le *chromedp.LoadError
		if errors.As(err, &le) && !neg && notUp(le.ErrorText) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond) // polling for the server, with a deadline
			continue
		}
		failure := ""
		switch {
		case le != nil:
			failure = le.ErrorText
		case err != nil:
			ts.Fatalf("browser open %s: %v", u, err) // the browser, not the page
		case resp != nil && resp.Status >= 400:
			failure = fmt.Sprintf("HTTP %d %s", resp.Status, resp.StatusText)
		}
		switch {
		case failure != "" && neg:
			fmt.Fprintf(ts.Stderr(), "browser open %s: %s\n", u, failure)
		case failure != "":
			ts.Fatalf("browser open %s: %s", u, failure)
		case neg:
			ts.Fatalf("browser open %s: the page opened", u)
		}
		return
	}
}

// notUp reports whether a page failed to load because no server answers
// there (yet).
func notUp(chromiumError string) bool {
	for _, e := range []string{"ERR_CONNECTION_REFUSED", "ERR_CONNECTION_RESET", "ERR_EMPTY_RESPONSE"} {
		if strings.Contains(chromiumError, e) {
			return true
		}
	}
	return false
}

// browserClick clicks the first visible match of sel and, when that starts
// a navigation of the page, waits for the new page's load event.
func browserClick(ts *testscript.TestScript, b *browser, sel string) {
	if n := pageCount(ts, b, sel); n == 0 {
		// Give a page that is still changing the same time text has.
		poll(ts, false, func() (bool, string) {
			n := pageCount(ts, b, sel)
			return n > 0, fmt.Sprintf("no element matches %q", sel)
		})
	}
	b.mu.Lock()
	before := b.seq
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(b.ctx, checkWait)
	err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel)))
	cancel()
	if err != nil {
		ts.Fatalf("browser click %q: %v (is it visible?)", sel, err)
	}
	// A click on a link asks for the navigation while the click is
	// handled; give a script's handler a moment more.
	grace := time.Now().Add(300 * time.Millisecond)
	deadline := time.Now().Add(loadWait)
	for {
		b.mu.Lock()
		nav, load, same := b.navSeq, b.loadSeq, b.sameDoc
		b.mu.Unlock()
		switch {
		case nav <= before && time.Now().After(grace):
			return // the click changed the page in place, if at all
		case nav > before && (load > nav || same > nav):
			return
		case time.Now().After(deadline):
			loc, _ := do(b, chromedp.Location())
			ts.Fatalf("browser click %q: the page it led to did not load within %v (at %s)", sel, loadWait, loc)
		}
		time.Sleep(20 * time.Millisecond) // polling the events, with a deadline
	}
}

type textResult struct {
	Found bool   `json:"found"`
	Text  string `json:"text"`
}

// pageText is the innerText of the first element that matches sel.
func pageText(ts *testscript.TestScript, b *browser, sel string) textResult {
	q, _ := json.Marshal(sel)
	t, err := do(b, chromedp.Evaluate[textResult](fmt.Sprintf(
		`(() => { const e = document.querySelector(%s); return e === null ? {found: false, text: ""} : {found: true, text: e.innerText}; })()`, q)))
	if err != nil {
		ts.Fatalf("browser: selector %q: %v", sel, err)
	}
	return t
}

// pageCount is how many elements match sel.
func pageCount(ts *testscript.TestScript, b *browser, sel string) int {
	q, _ := json.Marshal(sel)
	n, err := do(b, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%s).length`, q)))
	if err != nil {
		ts.Fatalf("browser: selector %q: %v", sel, err)
	}
	return n
}

// poll calls check until its answer is !neg, for up to checkWait, and
// fails with check's last description if it never is.
func poll(ts *testscript.TestScript, neg bool, check func() (ok bool, what string)) {
	deadline := time.Now().Add(checkWait)
	for {
		ok, what := check()
		if ok != neg {
			return
		}
		if time.Now().After(deadline) {
			if neg {
				ts.Fatalf("still, after %v: %s", checkWait, what)
			}
			ts.Fatalf("after %v: %s", checkWait, what)
		}
		time.Sleep(50 * time.Millisecond) // polling the page, with a deadline
	}
}

// browserScreenshot writes a PNG of the whole page to name, and a copy to
// $ZEN_TEST_ARTIFACTS/<script>/ for CI to keep.
func browserScreenshot(ts *testscript.TestScript, b *browser, name string) {
	if filepath.Ext(name) != ".png" {
		ts.Fatalf("usage: browser screenshot FILE.png")
	}
	png, err := do(b, chromedp.FullScreenshot(100)) // quality 100 is PNG
	ts.Check(err)
	ts.Check(os.MkdirAll(filepath.Dir(ts.MkAbs(name)), 0o755))
	ts.Check(os.WriteFile(ts.MkAbs(name), png, 0o644))
	dir := ts.Getenv("ZEN_TEST_ARTIFACTS") // a script's own, to test this
	if dir == "" {
		dir = os.Getenv("ZEN_TEST_ARTIFACTS")
	}
	if dir != "" {
		dir = filepath.Join(dir, ts.Name())
		ts.Check(os.MkdirAll(dir, 0o755))
		ts.Check(os.WriteFile(filepath.Join(dir, filepath.Base(name)), png, 0o644))
	}
}

// cmdHTTPServe serves a folder of the script over HTTP on loopback.
//
//	httpserve VAR DIR
func cmdHTTPServe(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: httpserve VAR DIR")
	}
	dir := ts.MkAbs(args[1])
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		ts.Fatalf("httpserve: %s is not a folder", args[1])
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	ts.Defer(srv.Close)
	ts.Setenv(args[0], srv.Listener.Addr().String())
}

// fileserverMain is the fileserver program (see the top of this file).
func fileserverMain() int {
	fs := flag.NewFlagSet("fileserver", flag.ContinueOnError)
	wait := fs.Duration("wait", 0, "how long to wait before listening")
	if err := fs.Parse(os.Args[1:]); err != nil || fs.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: fileserver [-wait D] ADDR DIR")
		return 2
	}
	time.Sleep(*wait)
	err := http.ListenAndServe(fs.Arg(0), http.FileServer(http.Dir(fs.Arg(1))))
	fmt.Fprintln(os.Stderr, "fileserver:", err)
	return 1
}
