package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// blob is what the upstream serves at /blob.
var blob = bytes.Repeat([]byte("0123456789abcdef"), 64)

// upstream starts a server that serves blob at /blob (streamed, of unknown
// length, at /chunked), answers a POST with the length of its body, and
// counts the requests it gets.
func upstream(t *testing.T) (addr string, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch {
		case r.URL.Path == "/blob":
			w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
			w.Write(blob)
		case r.URL.Path == "/chunked":
			w.Write(blob[:100])
			w.(http.Flusher).Flush()
			w.Write(blob[100:])
		case r.Method == http.MethodPost:
			n, _ := io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, strconv.FormatInt(n, 10))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), hits
}

func start(t *testing.T, seed uint64) (*Proxy, *atomic.Int64) {
	t.Helper()
	addr, hits := upstream(t)
	p, err := Start(addr, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, hits
}

// client makes one connection a request, so that a fault is seen as it is
// and not retried by the transport on a connection it reused.
func client() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

func get(c *http.Client, p *Proxy, method, path string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, "http://"+p.Addr()+path, nil)
	if err != nil {
		return nil, nil, err
	}
	if method == http.MethodPost {
		req.Body = io.NopCloser(bytes.NewReader(blob))
		req.ContentLength = int64(len(blob))
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestForward(t *testing.T) {
	p, hits := start(t, 1)
	c := &http.Client{} // keep-alive: several requests on a connection
	for range 3 {
		for _, tt := range []struct {
			method, path string
			status       int
			body         []byte
			length       int64
		}{
			{"GET", "/blob", 200, blob, int64(len(blob))},
			{"GET", "/chunked", 200, blob, int64(len(blob))},
			{"HEAD", "/blob", 200, nil, int64(len(blob))},
			{"POST", "/upload", 201, []byte(strconv.Itoa(len(blob))), 4},
			{"GET", "/missing", 404, []byte("404 page not found\n"), 19},
		} {
			resp, b, err := get(c, p, tt.method, tt.path)
			if err != nil {
				t.Fatalf("%s %s: %v", tt.method, tt.path, err)
			}
			if resp.StatusCode != tt.status || !bytes.Equal(b, tt.body) || resp.ContentLength != tt.length {
				t.Errorf("%s %s = %d, %d bytes (Content-Length %d); want %d, %d bytes (%d)", tt.method, tt.path, resp.StatusCode, len(b), resp.ContentLength, tt.status, len(tt.body), tt.length)
			}
		}
	}
	if n := hits.Load(); n != 15 {
		t.Errorf("upstream got %d requests, want 15", n)
	}
	if n := p.Injected(); n != 0 {
		t.Errorf("Injected() = %d with no rules", n)
	}
}

// TestTLS checks that a client trying https is told at once that this is
// not TLS, as an HTTP server would tell it.
func TestTLS(t *testing.T) {
	p, hits := start(t, 1)
	_, err := client().Get("https://" + p.Addr() + "/blob")
	if err == nil || !strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		t.Errorf("https GET = %v, want an HTTP answer", err)
	}
	if hits.Load() != 0 {
		t.Errorf("upstream got %d requests", hits.Load())
	}
}

func TestDrop(t *testing.T) {
	for _, forward := range []bool{false, true} {
		p, hits := start(t, 1)
		p.SetRules(Rule{Fault: Drop, Method: "POST", Forward: forward})
		_, _, err := get(client(), p, "POST", "/upload")
		if !errors.Is(err, io.EOF) {
			t.Errorf("forward %v: POST = %v, want EOF", forward, err)
		}
		if want := map[bool]int64{false: 0, true: 1}[forward]; hits.Load() != want {
			t.Errorf("forward %v: upstream got %d requests, want %d", forward, hits.Load(), want)
		}
		if p.Count(Drop) != 1 || p.Injected() != 1 {
			t.Errorf("forward %v: %d drops, %d faults; want 1", forward, p.Count(Drop), p.Injected())
		}
	}
}

func TestReset(t *testing.T) {
	p, hits := start(t, 1)
	p.SetRules(Rule{Fault: Reset, Path: "/blob"})
	if _, _, err := get(client(), p, "GET", "/blob"); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("GET = %v, want a connection reset", err)
	}
	p.SetRules(Rule{Fault: Reset, Conn: true})
	if _, _, err := get(client(), p, "GET", "/blob"); err == nil {
		t.Error("GET on a connection reset as accepted succeeded")
	}
	if hits.Load() != 0 || p.Count(Reset) != 2 {
		t.Errorf("upstream got %d requests, %d resets; want 0 and 2", hits.Load(), p.Count(Reset))
	}
}

func TestDelay(t *testing.T) {
	p, _ := start(t, 1)
	const d = 200 * time.Millisecond
	for _, r := range []Rule{{Fault: Delay, Delay: d}, {Fault: Delay, Delay: d, Conn: true}} {
		p.SetRules(r)
		begin := time.Now()
		_, b, err := get(client(), p, "GET", "/blob")
		if err != nil || !bytes.Equal(b, blob) {
			t.Fatalf("conn %v: GET = %d bytes, %v", r.Conn, len(b), err)
		}
		if took := time.Since(begin); took < d {
			t.Errorf("conn %v: GET took %v, want at least %v", r.Conn, took, d)
		}
	}
	if p.Count(Delay) != 2 {
		t.Errorf("%d delays, want 2", p.Count(Delay))
	}
}

func TestStatus(t *testing.T) {
	p, hits := start(t, 1)
	for _, r := range []Rule{
		{Fault: Status, Status: 500},
		{Fault: Status, Status: 502},
		{Fault: Status, Status: 503, RetryAfter: "2"},
	} {
		p.SetRules(r)
		resp, b, err := get(client(), p, "POST", "/upload")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != r.Status || resp.Header.Get("Retry-After") != r.RetryAfter || !strings.HasPrefix(string(b), "fault injected: ") {
			t.Errorf("%d: got %s, Retry-After %q, %q", r.Status, resp.Status, resp.Header.Get("Retry-After"), b)
		}
	}
	if hits.Load() != 0 || p.Count(Status) != 3 {
		t.Errorf("upstream got %d requests, %d status faults; want 0 and 3", hits.Load(), p.Count(Status))
	}
}

func TestTruncate(t *testing.T) {
	p, _ := start(t, 1)
	for _, tt := range []struct {
		path string
		keep int64
		want int
	}{
		{"/blob", 0, len(blob) / 2},
		{"/chunked", 10, 10},
	} {
		p.SetRules(Rule{Fault: Truncate, Keep: tt.keep})
		resp, b, err := get(client(), p, "GET", tt.path)
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(b) != tt.want || !bytes.Equal(b, blob[:len(b)]) {
			t.Errorf("GET %s: %d bytes, %v; want %d bytes, then unexpected EOF", tt.path, len(b), err, tt.want)
		}
		if resp == nil || resp.ContentLength != int64(len(blob)) {
			t.Errorf("GET %s: Content-Length not the blob's: %v", tt.path, resp)
		}
	}
	// A HEAD, a POST's answer, a 404: nothing to cut.
	p.SetRules(Rule{Fault: Truncate})
	for _, r := range [][2]string{{"HEAD", "/blob"}, {"POST", "/upload"}, {"GET", "/missing"}} {
		if _, _, err := get(client(), p, r[0], r[1]); err != nil {
			t.Errorf("%s %s: %v", r[0], r[1], err)
		}
	}
	if p.Count(Truncate) != 2 {
		t.Errorf("%d truncations, want 2", p.Count(Truncate))
	}
}

func TestWrongDigest(t *testing.T) {
	p, _ := start(t, 1)
	p.SetRules(Rule{Fault: WrongDigest, Path: "/blob"})
	resp, b, err := get(client(), p, "GET", "/blob")
	if err != nil || len(b) != len(blob) || resp.ContentLength != int64(len(blob)) {
		t.Fatalf("GET = %d bytes, %v; want %d", len(b), err, len(blob))
	}
	for i := range b {
		if b[i] == blob[i] {
			t.Fatalf("byte %d unchanged", i)
		}
	}
}

func TestSelect(t *testing.T) {
	p, _ := start(t, 1)
	// The third GET of /blob, and only it; POSTs and other paths pass.
	p.SetRules(Rule{Fault: Status, Status: 503, Method: "GET", Path: "/blob", Skip: 2, Times: 1})
	var got []int
	for _, path := range []string{"/blob", "/chunked", "/blob", "/blob", "/blob"} {
		resp, _, err := get(client(), p, "GET", path)
		if err != nil {
			t.Fatal(err)
		}
		get(client(), p, "POST", "/blob")
		got = append(got, resp.StatusCode)
	}
	if want := []int{200, 200, 200, 503, 200}; !slices.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	// The first rule that fires wins.
	p.SetRules(Rule{Fault: Status, Status: 500, Times: 1}, Rule{Fault: Status, Status: 502})
	for _, want := range []int{500, 502, 502} {
		if resp, _, _ := get(client(), p, "GET", "/blob"); resp.StatusCode != want {
			t.Errorf("got %d, want %d", resp.StatusCode, want)
		}
	}
	if p.Injected() != 4 {
		t.Errorf("Injected() = %d, want 4", p.Injected())
	}
}

// TestProb checks that a probability draws from the seed: the same seed
// gives the same faults, and about the share asked for.
func TestProb(t *testing.T) {
	run := func(seed uint64) []int {
		p, _ := start(t, seed)
		p.SetRules(Rule{Fault: Status, Status: 503, Prob: 0.3})
		var failed []int
		for i := range 100 {
			resp, _, err := get(client(), p, "GET", "/blob")
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode == 503 {
				failed = append(failed, i)
			}
		}
		if p.Injected() != len(failed) {
			t.Errorf("Injected() = %d, %d requests failed", p.Injected(), len(failed))
		}
		return failed
	}
	a, b := run(7), run(7)
	if !slices.Equal(a, b) {
		t.Errorf("seed 7 gave %v, then %v", a, b)
	}
	if len(a) < 15 || len(a) > 45 {
		t.Errorf("%d of 100 requests failed with probability 0.3", len(a))
	}
}

func TestClose(t *testing.T) {
	p, _ := start(t, 1)
	p.SetRules(Rule{Fault: Delay, Delay: time.Hour})
	errc := make(chan error, 1)
	go func() {
		_, _, err := get(client(), p, "GET", "/blob")
		errc <- err
	}()
	// Close once the request is held back by the delay, not before it
	// arrives (when it would fail for another reason).
	for deadline := time.Now().Add(10 * time.Second); p.Count(Delay) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the delay")
		}
		time.Sleep(time.Millisecond) // polling an event, with a deadline
	}
	select {
	case err := <-errc:
		t.Fatalf("the request ended while it was delayed: %v", err)
	default:
	}
	closed := make(chan struct{})
	go func() {
		p.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not cut the delay short")
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Error("a request held back by a delay succeeded when the proxy closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the delayed request did not end when the proxy closed")
	}
}
