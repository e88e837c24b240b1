package registry

import (
	"context"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/zen-dev/zen/progress"
)

// A store counts the bytes it moves on the progress.Meter of the
// operation's context, if it has one: the bytes hashed to pack what is
// pushed, the bytes of the blobs the store lacked as they are written,
// and the bytes of the blobs read. The counting is an atomic add per
// read or write of a buffer; nothing is counted without a meter.

// reader is s.b.reader, counting the blobs read as pulled.
func (s *store) reader(ctx context.Context, path string) (blobs, error) {
	b, err := s.b.reader(ctx, path)
	if m := progress.FromContext(ctx); m != nil && err == nil {
		b = meteredBlobs{blobs: b, m: m}
	}
	return b, err
}

// putBlobs is s.b.putBlobs, counting the blobs written, when the backend
// finds it lacks them and reads them, as pushed.
func (s *store) putBlobs(ctx context.Context, path string, bs []*blobLayer, n int) error {
	if m := progress.FromContext(ctx); m != nil {
		metered := make([]*blobLayer, len(bs))
		for i, b := range bs {
			open := b.open
			metered[i] = &blobLayer{d: b.d, spooled: b.spooled, open: func() (io.ReadCloser, error) {
				rc, err := open()
				if err != nil {
					return nil, err
				}
				m.ToPush(b.d.Size)
				return readCloser{m.Reader(rc, m.Pushed), rc}, nil
			}}
		}
		bs = metered
	}
	return s.b.putBlobs(ctx, path, bs, n)
}

type meteredBlobs struct {
	blobs
	m *progress.Meter
}

func (b meteredBlobs) open(ctx context.Context, d descriptor) (io.ReadCloser, error) {
	rc, err := b.blobs.open(ctx, d)
	if err != nil {
		return nil, err
	}
	return readCloser{b.m.Reader(rc, b.m.Pulled), rc}, nil
}

func (b meteredBlobs) manifest(ctx context.Context, h v1.Hash) ([]byte, error) {
	return b.blobs.manifest(ctx, h)
}

type readCloser struct {
	io.Reader
	io.Closer
}
