package testkit

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
	commit := db.NewCommitter(store.WritesPerCommit)
	tb.Cleanup(func() { commit.Close(); db.Close() })
	return db, commit
}

// WaitFor polls cond until it holds, failing the test after 15 s.
func WaitFor(tb TB, what string, cond func() bool) {
	tb.Helper()
	WaitForWithin(tb, 15*time.Second, what, cond)
}

// WaitForWithin polls cond until it holds, failing the test after limit.
func WaitForWithin(tb TB, limit time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// RunUntilStopped runs run in a goroutine until stop is called or the
// test ends, whichever comes first; stop waits for run to return, and may
// be called more than once.
func RunUntilStopped(tb TB, run func(ctx context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = run(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	tb.Cleanup(stop)
	return stop
}

// Request sends a request with HTTP basic credentials (none if user is
// empty) and returns the status and body; a failure to send fails the test.
func Request(tb TB, method, url, user, password, body string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatalf("request %s %s: %v", method, url, err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return Do(tb, req)
}

// Do sends req and returns the status and body; a failure to send fails
// the test.
func Do(tb TB, req *http.Request) (int, string) {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Skipper is a TB that can skip.
type Skipper interface {
	TB
	Skipf(format string, args ...any)
}

// MissingPeer skips a test whose real peer is not installed, saying what
// to install; in CI (CI=true), where the Makefile installed everything, a
// missing peer is a failure instead: a skipped proof is no proof.
func MissingPeer(tb Skipper, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf(format+" (CI=true: a missing peer fails the run)", args...)
	}
	tb.Skipf(format, args...)
}

// WriteRandomFile writes size random bytes at path, making its folder:
// a boot file no compression or cache can shortcut.
func WriteRandomFile(tb TB, path string, size int) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatalf("write %s: %v", path, err)
	}
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatalf("write %s: %v", path, err)
	}
}
