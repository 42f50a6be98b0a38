package testkit

import (
	"context"
	"path/filepath"
	"time"

	"github.com/slipway/slipway/store"
)

// OpenStore opens a fresh SQLite store in a temporary directory, with a
// group committer, both closed when the test ends.
func OpenStore(tb TB) (*store.Store, *store.Committer) {
	tb.Helper()
	db, err := store.Open(context.Background(), filepath.Join(tb.TempDir(), "slipway.db"), store.Options{})
	if err != nil {
		tb.Fatalf("open a store: %v", err)
	}
	commit := db.NewCommitter(256)
	tb.Cleanup(func() { commit.Close(); db.Close() })
	return db, commit
}

// WaitFor polls cond until it holds, failing the test after 15 s.
func WaitFor(tb TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
