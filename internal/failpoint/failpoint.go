// Package failpoint stops zen at named points of its work, for the crash
// tests: with ZEN_FAILPOINT=NAME in the environment, Hit(NAME) kills the
// process with SIGKILL, as a crash or the kernel's OOM killer would, so
// that a test can check what zen leaves behind at exactly that point.
// Without it, Hit costs one comparison.
package failpoint

import (
	"os"
	"syscall"
)

// point is the failpoint this process stops at, "" for none.
var point = os.Getenv("ZEN_FAILPOINT")

// The points zen has.
const (
	// BlobsUploaded: an artifact's blobs are in the store, its
	// manifest is not.
	BlobsUploaded = "registry.blobs-uploaded"
	// Signed: an artifact's signature is stored, its attestation is not.
	Signed = "apply.signed"
	// Journaled: a step's success is in the journal, not yet reported.
	Journaled = "apply.journaled"
	// ObjectsWritten: a state commit's objects are written and synced,
	// the ref has not moved.
	ObjectsWritten = "state.objects-written"
	// RefMoved: the state ref has moved to the runs' commit; the journal
	// is still there.
	RefMoved = "state.ref-moved"
	// MigrateCopied: zen stack migrate copied one manifest with its
	// blobs and tag; the rest is not copied. Not in Points: an apply
	// never reaches it.
	MigrateCopied = "migrate.copied"
)

// Points lists every failpoint.
var Points = []string{BlobsUploaded, Signed, Journaled, ObjectsWritten, RefMoved}

// Hit kills the process if name is the failpoint it was told to stop at.
func Hit(name string) {
	if point == "" || point != name {
		return
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}
