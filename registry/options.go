package registry

import (
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Option changes a store opened by OpenLayout or OpenRemote. The defaults
// are zen's; tests shorten the waits and sizes, so that they do not sleep
// or write 64 MiB for real.
type Option func(*options)

type options struct {
	backoff   remote.Backoff
	largeFile int64
}

func newOptions(opts []Option) options {
	o := options{backoff: defaultBackoff, largeFile: defaultLargeFile}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// defaultBackoff is how a request that failed in a way that may pass is
// tried again: a connection closed or reset before the answer, an answer
// 408, 429, 500, 502, 503 or 504 (go-containerregistry's choice of what
// to retry; Retry-After is not read), or an answer's body that broke off
// (see reread). Five tries in all, 0.5, 1, 2 and 4 s apart, give or take
// a tenth: a registry still failing after 7.5 s is reported.
var defaultBackoff = remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 5}

// defaultLargeFile is the size from which a file of a model directory
// packed as tars gets a layer of its own, uploaded and stored apart from
// the others.
const defaultLargeFile = 64 << 20

// WithRetryBackoff sets how a remote store retries a request, and the
// reading of an answer, that failed in a way that may pass: b.Steps tries
// in all, the first wait b.Duration, each next one b.Factor times the
// last, give or take b.Jitter. A layout store ignores it.
func WithRetryBackoff(b remote.Backoff) Option {
	return func(o *options) { o.backoff = b }
}

// WithLargeFile sets the size, 64 MiB by default, from which a file of a
// model directory packed as tars gets a layer of its own. Models pushed
// with another size have other digests.
func WithLargeFile(n int64) Option {
	return func(o *options) { o.largeFile = n }
}
