package progress

import (
	"context"
	"io"
	"sync/atomic"
)

// A Meter counts the bytes long work moves. It is safe for concurrent
// use and cheap on the hot path (one atomic add a call); a nil *Meter
// counts nothing. Whatever shows it reads it on its own clock.
type Meter struct {
	hashed, pushed, toPush, pulled atomic.Int64
}

// Bytes is what a Meter counted.
type Bytes struct {
	// Hashed: bytes read to compute a digest (outputs packed for the
	// store, files pushed).
	Hashed int64
	// Pushed of ToPush: bytes written to an artifact store, of those it
	// was found to lack.
	Pushed, ToPush int64
	// Pulled: bytes read from an artifact store.
	Pulled int64
}

// Hashed counts n bytes hashed.
func (m *Meter) Hashed(n int64) {
	if m != nil {
		m.hashed.Add(n)
	}
}

// ToPush counts n bytes about to be pushed (the store lacks them).
func (m *Meter) ToPush(n int64) {
	if m != nil {
		m.toPush.Add(n)
	}
}

// Pushed counts n bytes pushed.
func (m *Meter) Pushed(n int64) {
	if m != nil {
		m.pushed.Add(n)
	}
}

// Pulled counts n bytes pulled.
func (m *Meter) Pulled(n int64) {
	if m != nil {
		m.pulled.Add(n)
	}
}

// Bytes returns what m counted so far.
func (m *Meter) Bytes() Bytes {
	if m == nil {
		return Bytes{}
	}
	return Bytes{Hashed: m.hashed.Load(), Pushed: m.pushed.Load(), ToPush: m.toPush.Load(), Pulled: m.pulled.Load()}
}

// Reader returns r counting what is read from it with count (one of
// m.Hashed, m.Pushed, m.Pulled); r itself when m is nil.
func (m *Meter) Reader(r io.Reader, count func(int64)) io.Reader {
	if m == nil {
		return r
	}
	return &countingReader{r: r, count: count}
}

type countingReader struct {
	r     io.Reader
	count func(int64)
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.count(int64(n))
	}
	return n, err
}

type meterKey struct{}

// NewContext returns ctx carrying m: the artifact store counts on it the
// bytes it hashes, pushes and pulls for ctx's operations.
func NewContext(ctx context.Context, m *Meter) context.Context {
	return context.WithValue(ctx, meterKey{}, m)
}

// FromContext returns the Meter ctx carries, nil if none.
func FromContext(ctx context.Context) *Meter {
	m, _ := ctx.Value(meterKey{}).(*Meter)
	return m
}
