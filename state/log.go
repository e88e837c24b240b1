package state

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// LogEntry is one commit of the state ref.
type LogEntry struct {
	Commit  string    `json:"commit"`
	Message string    `json:"message"`
	Author  string    `json:"author"` // "Name <email>"
	When    time.Time `json:"when"`
}

// Log lists the ref's commits, newest first, following first parents, up
// to n of them (n <= 0: all).
func (s *Store) Log(n int) ([]LogEntry, error) {
	h, err := s.current()
	if err != nil {
		return nil, err
	}
	var out []LogEntry
	for !h.IsZero() && (n <= 0 || len(out) < n) {
		c, err := s.readCommit(h)
		if err != nil {
			return nil, fmt.Errorf("state ref %s: %w", s.ref, err)
		}
		out = append(out, LogEntry{
			Commit:  h.String(),
			Message: strings.TrimSuffix(c.Message, "\n"),
			Author:  c.Author.String(),
			When:    c.Author.When,
		})
		h = plumbing.ZeroHash
		if len(c.ParentHashes) > 0 {
			h = c.ParentHashes[0]
		}
	}
	return out, nil
}

// gitDescribe names a commit of the state ref in a message.
func gitDescribe(h plumbing.Hash) string {
	if h.IsZero() {
		return "(no state)"
	}
	return gitShort(h.String())
}

func gitShort(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
