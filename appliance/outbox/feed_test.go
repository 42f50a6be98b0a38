package outbox

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

// A feed nobody reads hands out nothing old: a new subscriber gets what is
// committed after it subscribed; one that names the last event it saw gets
// what it missed first, in order; events pruned meanwhile are reported as
// an overflow.
func TestFeedSubscriptions(t *testing.T) {
	ctx := context.Background()
	db, commit := testkit.OpenStore(t)
	o := New(Config{DB: db, Commit: commit, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Keep: time.Nanosecond, MaxEvents: 1 << 20})
	f := runFeed(t, o)
	next := func(s *Subscription) Event {
		t.Helper()
		select {
		case e := <-s.Events():
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
			return Event{}
		}
	}
	publish := func(n int) {
		t.Helper()
		enqueue(t, db, n)
		o.Filled()
	}

	publish(3) // nobody listens: events 1-3 are not handed out later
	fresh, err := f.Subscribe(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	publish(1)
	if e := next(fresh); e.ID != 4 {
		t.Fatalf("a new subscriber got event %d first, want 4", e.ID)
	}
	back, err := f.Subscribe(ctx, 2) // saw up to 2
	if err != nil {
		t.Fatal(err)
	}
	publish(1)
	for _, want := range []int64{3, 4, 5} {
		if e := next(back); e.ID != want {
			t.Fatalf("a returning subscriber got %d, want %d", e.ID, want)
		}
	}
	if back.Overflowed() || fresh.Overflowed() {
		t.Fatal("overflow without a cause")
	}
	fresh.Close()
	back.Close()

	// Events 1-5 pruned (all consumers past them, older than Keep).
	testkit.WaitFor(t, "the feed past event 5", func() bool { at, _, _ := db.Cursor(ctx, "console"); return at >= 5 })
	if err := commit.Do(ctx, func(tx *store.Tx) error { return tx.SetCursor("mqtt", 5) }); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	publish(1)
	late, err := f.Subscribe(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if e := next(late); e.ID != 6 || !late.Overflowed() {
		t.Fatalf("a subscriber back after a prune got %d (overflow reported: false), want 6 and an overflow", e.ID)
	}
}

// A console that reads nothing while two full commits of heartbeats are
// announced (a stage and a state event for each write) still gets every
// event, in order, without an overflow: a booting site commits in such
// bursts, and a smaller buffer made every open console reload in them.
func TestSubscriberHoldsTwoFullCommitsOfHeartbeats(t *testing.T) {
	ctx := context.Background()
	db, commit := testkit.OpenStore(t)
	o := New(Config{DB: db, Commit: commit, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxEvents: 1 << 20})
	f := runFeed(t, o)
	sub, err := f.Subscribe(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	const burst = 2 * 2 * store.WritesPerCommit
	for range 2 {
		enqueue(t, db, burst/2)
		o.Filled()
	}
	testkit.WaitFor(t, "the burst handed out", func() bool { return len(sub.Events()) == burst })
	if sub.Overflowed() {
		t.Fatal("a subscriber that can hold the burst was told it overflowed")
	}
	for want := int64(1); want <= burst; want++ {
		if e := <-sub.Events(); e.ID != want {
			t.Fatalf("event %d arrived where %d was due", e.ID, want)
		}
	}
}

// runFeed opens o's "console" feed and runs it until the test ends.
func runFeed(t *testing.T, o *Outbox) *Feed {
	t.Helper()
	f, err := o.NewFeed(context.Background(), "console")
	if err != nil {
		t.Fatal(err)
	}
	testkit.RunUntilStopped(t, f.Run)
	return f
}
