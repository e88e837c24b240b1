package cli

import (
	"fmt"
	"io"
	"time"
)

// lockWaiting says on stderr that the command waits for the clone's apply
// lock, and how to stop waiting.
func lockWaiting(stderr io.Writer, timeout time.Duration) func(holder string) {
	return func(holder string) {
		fmt.Fprintf(stderr, "zen: waiting up to %s for %s to finish (Ctrl-C stops waiting)\n", timeout, holder)
	}
}
