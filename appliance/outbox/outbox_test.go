package outbox

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

func enqueue(t *testing.T, db *store.Store, n int) {
	t.Helper()
	err := db.Update(context.Background(), func(tx *store.Tx) error {
		for range n {
			Enqueue(tx, Message{Topic: "t", Payload: []byte("x"), QoS: 1})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, db *store.Store) int {
	t.Helper()
	all, err := db.EventsAfter(context.Background(), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// Consumers keep their own places, woken by Filled; a consumer reopened
// (a restart) resumes where it was; a new one starts at the newest event.
func TestConsumersReadFromTheirOwnCursors(t *testing.T) {
	ctx := context.Background()
	db, commit := testkit.OpenStore(t)
	enqueue(t, db, 3)
	o := New(Config{DB: db, Commit: commit, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	mqtt, err := o.Open(ctx, "mqtt") // the migration placed it at the start
	if err != nil {
		t.Fatal(err)
	}
	bridge, err := o.Open(ctx, "bridge")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := bridge.Next(ctx, 10); len(got) != 0 {
		t.Fatalf("a new consumer read %d events from before it existed", len(got))
	}
	enqueue(t, db, 2)
	o.Filled()
	for _, c := range []*Consumer{mqtt, bridge} {
		select {
		case <-c.Woken():
		default:
			t.Fatalf("%s was not woken", c.Name())
		}
	}
	got, _ := mqtt.Next(ctx, 10)
	if len(got) != 5 || got[0].ID >= got[4].ID {
		t.Fatalf("mqtt read %d events", len(got))
	}
	if err := mqtt.Done(ctx, got[3].ID); err != nil {
		t.Fatal(err)
	}
	again := New(Config{DB: db, Commit: commit})
	reopened, err := again.Open(ctx, "mqtt")
	if err != nil {
		t.Fatal(err)
	}
	if rest, _ := reopened.Next(ctx, 10); len(rest) != 1 || rest[0].ID != got[4].ID {
		t.Fatalf("after a restart mqtt resumes with %+v", rest)
	}
	if b, _ := bridge.Next(ctx, 10); len(b) != 2 {
		t.Fatalf("bridge read %d events, want the 2 after it joined", len(b))
	}
}

// Pruning waits for the slowest consumer and for Keep, except for a
// consumer more than MaxEvents behind: then the disk wins, and the log says
// which consumer lost what.
func TestPruneWaitsForTheSlowestConsumerUpToTheCap(t *testing.T) {
	ctx := context.Background()
	db, commit := testkit.OpenStore(t)
	var logs bytes.Buffer
	now := time.Now()
	o := New(Config{DB: db, Commit: commit, Log: slog.New(slog.NewTextHandler(&logs, nil)), Keep: time.Minute, MaxEvents: 10,
		Now: func() time.Time { return now }})
	fast, _ := o.Open(ctx, "mqtt")
	slow, _ := o.Open(ctx, "bridge") // joins at 0 events
	enqueue(t, db, 8)
	events, _ := fast.Next(ctx, 100)
	if err := fast.Done(ctx, events[7].ID); err != nil {
		t.Fatal(err)
	}
	if err := slow.Done(ctx, events[2].ID); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		now    time.Time
		add    int
		remain int
	}{
		{"younger than Keep: nothing goes", now, 0, 8},
		{"older: what both handled goes", now.Add(2 * time.Minute), 0, 5},
		{"the slow one far behind: the cap prunes past it", now.Add(2 * time.Minute), 20, 10},
	}
	for _, s := range steps {
		now = s.now
		enqueue(t, db, s.add)
		if _, err := o.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		if got := count(t, db); got != s.remain {
			t.Fatalf("%s: %d events remain, want %d", s.name, got, s.remain)
		}
	}
	if !strings.Contains(logs.String(), "consumer=bridge") {
		t.Errorf("the log does not name the consumer that lost events:\n%s", logs.String())
	}
}

// Handled moves a consumer on at once, even while the committer is busy
// (a site's heartbeats queued ahead), and stores its place once it can;
// SavePlaces stores it at a stop.
func TestHandledDoesNotWaitForTheCommit(t *testing.T) {
	ctx := context.Background()
	db, commit := testkit.OpenStore(t)
	o := New(Config{DB: db, Commit: commit, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	mqtt, err := o.Open(ctx, "mqtt")
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, db, 6)
	busy, release := make(chan struct{}), make(chan struct{})
	go commit.Do(ctx, func(*store.Tx) error { close(busy); <-release; return nil })
	<-busy
	first, _ := mqtt.Next(ctx, 3)
	mqtt.Handled(first[2].ID)
	rest, _ := mqtt.Next(ctx, 10)
	if len(rest) != 3 || rest[0].ID != first[2].ID+1 {
		t.Fatalf("after Handled the consumer reads %d events, want the 3 after it", len(rest))
	}
	mqtt.Handled(rest[0].ID)
	mqtt.Handled(rest[1].ID)
	if at, _, _ := db.Cursor(ctx, "mqtt"); at >= first[2].ID {
		t.Fatalf("the cursor was stored (%d) while the committer was busy", at)
	}
	close(release)
	testkit.WaitFor(t, "the cursor stored", func() bool { at, _, _ := db.Cursor(ctx, "mqtt"); return at == rest[1].ID })
	mqtt.Handled(rest[2].ID)
	if err := o.SavePlaces(ctx); err != nil {
		t.Fatal(err)
	}
	if at, _, _ := db.Cursor(ctx, "mqtt"); at != rest[2].ID {
		t.Fatalf("after SavePlaces the cursor is at %d, want %d", at, rest[2].ID)
	}
}

// A consumer no longer configured is forgotten, and no longer holds the
// events it had not read from pruning; its place and Behind say how far
// behind an open one is.
func TestForgottenConsumerHoldsNothingBack(t *testing.T) {
	ctx := context.Background()
	db, commit := testkit.OpenStore(t)
	now := time.Now()
	o := New(Config{DB: db, Commit: commit, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Keep: time.Minute, Now: func() time.Time { return now }})
	fast, _ := o.Open(ctx, "mqtt")
	bridge, _ := o.Open(ctx, "bridge")
	enqueue(t, db, 5)
	if behind, err := bridge.Behind(ctx); err != nil || behind != 5 || bridge.Place() != 0 {
		t.Fatalf("Behind = %d, %v; Place = %d", behind, err, bridge.Place())
	}
	events, _ := fast.Next(ctx, 100)
	if err := fast.Done(ctx, events[4].ID); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := o.Prune(ctx); err != nil || count(t, db) != 5 {
		t.Fatalf("the bridge's unread events went: %d left, %v", count(t, db), err)
	}
	if err := o.Forget(ctx, "bridge"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Prune(ctx); err != nil || count(t, db) != 0 {
		t.Fatalf("a forgotten consumer still holds events: %d left, %v", count(t, db), err)
	}
}
