// Package faultproxy is a proxy for tests that stands between an HTTP/1.1
// client and a real server (an OCI registry), forwards what they say, and
// injects the faults its rules ask for: dropped and reset connections,
// delays, 5xx answers, bodies cut short and bodies that are not what their
// digest says.
//
// It listens on 127.0.0.1, reads each request off the accepted connection
// with http.ReadRequest, forwards it upstream with an http.Transport and
// writes the answer itself, so that it can corrupt it. The Host header is
// forwarded as the client sent it, so that the URLs a registry answers with
// (an upload's Location) lead back through the proxy.
package faultproxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault is a kind of fault.
type Fault int

const (
	// Drop closes the connection without an answer. The request's body
	// is read first, so that the close is a FIN, not a reset.
	Drop Fault = iota + 1
	// Reset resets the connection (SO_LINGER 0, then close).
	Reset
	// Delay waits Rule.Delay, then forwards.
	Delay
	// Status answers Rule.Status, with Rule.RetryAfter, without
	// forwarding.
	Status
	// Truncate forwards the answer's headers with the full Content-Length
	// and closes the connection after Rule.Keep bytes of its body.
	Truncate
	// WrongDigest serves the answer's body with every byte changed: the
	// same length, other content.
	WrongDigest
)

var faultNames = map[Fault]string{
	Drop:        "drop",
	Reset:       "reset",
	Delay:       "delay",
	Status:      "status",
	Truncate:    "truncate",
	WrongDigest: "wrong-digest",
}

func (f Fault) String() string {
	if s, ok := faultNames[f]; ok {
		return s
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// bodyFault reports whether f corrupts an answer's body. Rules of these
// faults are matched against answers, once upstream gave one: a 200 or 206
// with a body. The others are matched against requests.
func (f Fault) bodyFault() bool { return f == Truncate || f == WrongDigest }

// Rule says which requests, or connections, get a fault. Of the rules
// that select a request, the first one that fires injects its fault, and
// the rules after it do not see the request.
type Rule struct {
	Fault Fault

	// Conn makes the rule apply to connections as they are accepted,
	// before any request is read: Drop and Reset close them, Delay holds
	// them back. Method and Path are then ignored.
	Conn bool
	// Method ("" for any) and a substring of the path ("" for any) select
	// the requests the rule applies to.
	Method string
	Path   string

	// Skip lets the first Skip selected requests through. After that, the
	// rule fires on each selected request (with probability Prob, if it
	// is not 0, drawn from the proxy's seeded source) until it fired
	// Times times (0: no limit). Skip: n-1, Times: 1 is the nth request.
	Skip  int
	Times int
	Prob  float64

	// Delay is how long a Delay waits.
	Delay time.Duration
	// Status is the code of a Status answer (500, 502, 503…), RetryAfter
	// its Retry-After header ("" for none).
	Status     int
	RetryAfter string
	// Forward makes a Drop or Reset happen after the request was
	// forwarded and answered: upstream acted on it, the answer is lost.
	Forward bool
	// Keep is how many bytes of the body a Truncate serves; 0 is half.
	Keep int64
}

func (r *Rule) selects(req *http.Request) bool {
	return (r.Method == "" || r.Method == req.Method) && strings.Contains(req.URL.Path, r.Path)
}

// Proxy is a running fault-injecting proxy. Its methods are safe for
// concurrent use.
type Proxy struct {
	upstream  string
	ln        net.Listener
	tr        *http.Transport
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu       sync.Mutex
	rules    []Rule
	seen     []int // per rule: requests selected
	fired    []int // per rule: faults injected
	rng      *rand.Rand
	injected map[Fault]int
	conns    map[net.Conn]struct{}
}

// Start listens on a free port of 127.0.0.1 and forwards to upstream
// (host:port, spoken to over plain HTTP). seed seeds the draws of rules
// with a probability. Close stops it.
func Start(upstream string, seed uint64) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		upstream: upstream,
		ln:       ln,
		// No compression: the client must see upstream's bytes and
		// lengths.
		tr:       &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16},
		done:     make(chan struct{}),
		rng:      rand.New(rand.NewPCG(seed, seed)),
		injected: map[Fault]int{},
		conns:    map[net.Conn]struct{}{},
	}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetRules replaces the rules, and starts their counts afresh. With none,
// everything is forwarded as it is. A Conn rule of a fault other than
// Drop, Reset or Delay is a mistake, and panics.
func (p *Proxy) SetRules(rules ...Rule) {
	for _, r := range rules {
		if r.Conn && r.Fault != Drop && r.Fault != Reset && r.Fault != Delay {
			panic(fmt.Sprintf("faultproxy: a connection cannot get a %s fault", r.Fault))
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = rules
	p.seen = make([]int, len(rules))
	p.fired = make([]int, len(rules))
}

// Injected is the number of faults injected since Start.
func (p *Proxy) Injected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.injected {
		n += c
	}
	return n
}

// Count is the number of faults of kind f injected since Start.
func (p *Proxy) Count(f Fault) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.injected[f]
}

// Close stops listening, closes every connection, cuts delays short and
// waits for the proxy's goroutines. Closing again does nothing.
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		close(p.done)
		p.ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
		p.tr.CloseIdleConnections()
	})
}

// fire returns the first rule that fires for a connection (req nil), a
// request, or an answer with a body (body true), and counts its fault.
func (p *Proxy) fire(req *http.Request, body bool) (Rule, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.rules {
		r := &p.rules[i]
		if r.Conn != (req == nil) || (req != nil && (r.Fault.bodyFault() != body || !r.selects(req))) {
			continue
		}
		p.seen[i]++
		if p.seen[i] <= r.Skip || (r.Times > 0 && p.fired[i] >= r.Times) || (r.Prob > 0 && p.rng.Float64() >= r.Prob) {
			continue
		}
		p.fired[i]++
		p.injected[r.Fault]++
		return *r, true
	}
	return Rule{}, false
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		select {
		case <-p.done: // Close has closed the others
			p.mu.Unlock()
			c.Close()
			return
		default:
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() {
			defer func() {
				p.mu.Lock()
				delete(p.conns, c)
				p.mu.Unlock()
				c.Close()
			}()
			p.serve(c)
		})
	}
}

// sleep waits d, or less if the proxy is closed; it reports whether it
// waited all of d.
func (p *Proxy) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.done:
		return false
	}
}

// tlsHandshake is the first byte of a TLS connection.
const tlsHandshake = 0x16

// reset closes c with a TCP reset.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// serve answers the requests of one connection until it is closed or a
// fault ends it.
func (p *Proxy) serve(c net.Conn) {
	if r, ok := p.fire(nil, false); ok {
		switch r.Fault {
		case Drop:
			return
		case Reset:
			reset(c)
			return
		case Delay:
			if !p.sleep(r.Delay) {
				return
			}
		}
	}
	br := bufio.NewReader(c)
	// A TLS handshake (clients try https first) gets at once the answer
	// an HTTP server gives it, which the client takes for "not TLS here".
	b, err := br.Peek(1)
	if err != nil {
		return
	}
	if b[0] == tlsHandshake {
		io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
		return
	}
	bw := bufio.NewWriter(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if !p.exchange(c, bw, req) {
			return
		}
	}
}

// exchange forwards one request and writes its answer, injecting what the
// rules say. It reports whether the connection can carry another request.
func (p *Proxy) exchange(c net.Conn, bw *bufio.Writer, req *http.Request) bool {
	var body *drained
	if req.Body != http.NoBody {
		body = &drained{r: req.Body, closed: make(chan struct{})}
		req.Body = body
	}
	r, fault := p.fire(req, false)
	switch {
	case fault && r.Fault == Drop && !r.Forward:
		io.Copy(io.Discard, req.Body)
		return false
	case fault && r.Fault == Reset && !r.Forward:
		reset(c)
		return false
	case fault && r.Fault == Delay:
		if !p.sleep(r.Delay) {
			return false
		}
	case fault && r.Fault == Status:
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return false
		}
		return p.write(bw, req, statusAnswer(req, r)) && !req.Close
	}

	req.URL.Scheme, req.URL.Host, req.RequestURI = "http", p.upstream, ""
	resp, err := p.tr.RoundTrip(req)
	if err != nil {
		p.write(bw, req, &http.Response{StatusCode: http.StatusBadGateway, Header: http.Header{}, Body: http.NoBody})
		return false
	}
	defer resp.Body.Close()
	switch {
	case fault && r.Fault == Drop:
		return false
	case fault && r.Fault == Reset:
		reset(c)
		return false
	}
	// The transport may read the request's body after RoundTrip returned:
	// wait for it to let go. What upstream did not read of it would be
	// taken for the next request.
	keep := !req.Close
	if body != nil {
		<-body.closed
		keep = keep && body.eof
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent || req.Method == http.MethodHead || resp.ContentLength == 0 {
		return p.write(bw, req, resp) && keep
	}
	// A body a rule may corrupt is read whole first: tests' blobs are
	// small.
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return false
	}
	resp.ContentLength, resp.TransferEncoding = int64(len(b)), nil
	fault = false
	if len(b) > 0 {
		r, fault = p.fire(req, true)
	}
	switch {
	case !fault:
	case r.Fault == WrongDigest:
		bad := make([]byte, len(b))
		for i := range b {
			bad[i] = b[i] ^ 0xff
		}
		b = bad
	case r.Fault == Truncate:
		n := r.Keep
		if n <= 0 || n >= int64(len(b)) {
			n = int64(len(b)) / 2
		}
		// The headers promise len(b) bytes; n come, then the
		// connection ends.
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		resp.Header.Del("Transfer-Encoding")
		fmt.Fprintf(bw, "HTTP/1.1 %s\r\n", resp.Status)
		resp.Header.Write(bw)
		bw.WriteString("\r\n")
		bw.Write(b[:n])
		bw.Flush()
		return false
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return p.write(bw, req, resp) && keep
}

// write writes resp to the client as the answer to req. It reports
// whether that went well and the connection can carry another request: a
// body of unknown length, not chunked, ends with the connection.
func (p *Proxy) write(bw *bufio.Writer, req *http.Request, resp *http.Response) bool {
	resp.Request = req
	resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.1", 1, 1
	resp.Header.Del("Connection")
	resp.Header.Del("Keep-Alive")
	if err := resp.Write(bw); err != nil || bw.Flush() != nil {
		return false
	}
	return resp.ContentLength >= 0 || slices.Contains(resp.TransferEncoding, "chunked") || req.Method == http.MethodHead
}

// statusAnswer is the answer of a Status fault to req.
func statusAnswer(req *http.Request, r Rule) *http.Response {
	msg := fmt.Sprintf("fault injected: %d %s\n", r.Status, http.StatusText(r.Status))
	h := http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
	if r.RetryAfter != "" {
		h.Set("Retry-After", r.RetryAfter)
	}
	return &http.Response{
		StatusCode:    r.Status,
		Header:        h,
		ContentLength: int64(len(msg)),
		Body:          io.NopCloser(strings.NewReader(msg)),
		Request:       req,
	}
}

// drained is a request body that remembers whether it was read to its end.
// Closing it closes closed, not the connection, which is the proxy's.
type drained struct {
	r      io.Reader
	eof    bool
	once   sync.Once
	closed chan struct{}
}

func (d *drained) Read(b []byte) (int, error) {
	n, err := d.r.Read(b)
	if errors.Is(err, io.EOF) {
		d.eof = true
	}
	return n, err
}

func (d *drained) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}
