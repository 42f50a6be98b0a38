// Package testkit holds the few helpers tests across the tree share: a
// fresh store, waiting for a condition. It imports nothing of Slipway but
// the store, so that any package's tests may use it without an import
// cycle.
package testkit

// TB is the part of testing.TB the helpers need; testkit does not import
// testing, since the demo links testbed (and so this) into the binary.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}
