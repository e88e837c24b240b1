// Package errdef holds the sentinel errors that zen's stores and the
// signature package share: a store's repository is read by the signature
// package as it is, so "not found" must be one error to both.
package errdef

import "errors"

var (
	// ErrNotFound is wrapped by the errors for a manifest, tag or blob that
	// a store or repository does not hold.
	ErrNotFound = errors.New("not found")
	// ErrDigestMismatch is wrapped by the errors for stored content that
	// does not match its digest.
	ErrDigestMismatch = errors.New("content does not match its digest")
)
