// Package wait pauses the way every wait in zen must: until a duration
// passes or the context ends, whichever comes first.
package wait

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx ends. It returns ctx.Err() when ctx
// ended first (or had ended already), nil otherwise.
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
