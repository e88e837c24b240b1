// Package faulttest puts zen through registry faults: a real registry
// (distribution's docker-registry, started by internal/testregistry)
// behind internal/faultproxy, driven through registry.Store and through
// zen apply and zen artifacts get. Its tests check that faults that pass
// are retried until the push or pull succeeds, that faults that do not
// pass fail in bounded time with an error naming what failed, that the
// state ref never records an artifact that was not stored whole, and that
// content that does not match its digest is refused.
//
// With ZEN_STRESS=1 the tests run ten rounds instead of one. When
// ZEN_STRESS_REPORT names a file, they append to it "faults injected N"
// and "faults recovered M": the faults after which zen either succeeded
// or failed cleanly, as it should.
package faulttest
