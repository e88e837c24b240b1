package registry

import (
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestOptions checks zen's defaults, which the tests' stores do not use:
// five tries 0.5, 1, 2 and 4 s apart, and a layer of its own from 64 MiB.
func TestOptions(t *testing.T) {
	o := newOptions(nil)
	if want := (remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 5}); o.backoff != want {
		t.Errorf("default backoff %+v, want %+v", o.backoff, want)
	}
	if o.largeFile != 64<<20 {
		t.Errorf("default large file %d, want 64 MiB", o.largeFile)
	}
	b := remote.Backoff{Duration: time.Millisecond, Steps: 2}
	o = newOptions([]Option{WithRetryBackoff(b), WithLargeFile(10)})
	if o.backoff != b || o.largeFile != 10 {
		t.Errorf("options %+v, want backoff %+v and large file 10", o, b)
	}
}
