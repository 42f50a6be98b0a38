package appliance

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/broker"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed"
)

// relayFixture is a store with n pending events and a broker with one
// QoS 1 subscriber counting what arrives.
func relayFixture(tb testing.TB, n int) (*relay, <-chan struct{}) {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(tb.TempDir(), "slipway.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.New(broker.Config{Addr: netip.MustParseAddr("127.0.0.1"), Port: testbed.FreePort(tb, "tcp"), Access: broker.Access{Anonymous: true}, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	if err := b.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	err = db.Update(ctx, func(tx *store.Tx) error {
		for i := range n {
			if _, err := tx.Enqueue(store.Event{Topic: fmt.Sprintf("NICO/v1/machine/m%d/state", i%1000), Payload: []byte(`{"state":"ready"}`), QoS: 1, Retain: true}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	all := make(chan struct{})
	got := 0
	msgs := subscribe(tb, "tcp://"+b.Addrs()[0].String(), "NICO/#")
	go func() {
		for range msgs {
			if got++; got == n {
				close(all)
			}
		}
	}()
	commit := db.NewCommitter(64)
	tb.Cleanup(commit.Close)
	return newRelay(db, commit, b, quiet, prometheus.NewRegistry()), all
}

// The relay publishes everything pending, in order, and marks it published.
func TestRelayDrainsTheOutbox(t *testing.T) {
	r, all := relayFixture(t, 1500)
	n, err := r.drain(context.Background())
	if err != nil || n != 1500 {
		t.Fatalf("drained %d, %v", n, err)
	}
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatal("the subscriber did not get every event")
	}
	if pending, _ := r.db.PendingEvents(context.Background(), 1); len(pending) != 0 {
		t.Fatalf("still pending: %+v", pending)
	}
}

// BenchmarkRelay is events per second from the outbox to a subscriber.
func BenchmarkRelay(b *testing.B) {
	const n = 10000
	for b.Loop() {
		b.StopTimer()
		r, all := relayFixture(b, n)
		b.StartTimer()
		if _, err := r.drain(context.Background()); err != nil {
			b.Fatal(err)
		}
		<-all
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// At start the relay publishes what a crash left, then every machine's
// state, so retained messages are whole before the first subscriber.
func TestRelaySeedPublishesLeftoversThenStates(t *testing.T) {
	r, all := relayFixture(t, 10)
	states := []domain.Machine{{ID: "m1", State: domain.Ready(), Since: time.Now()}, {ID: "m2", State: domain.HostInit(domain.HostInitInit), Since: time.Now()}}
	if err := r.seed(context.Background(), currentMessages(states, nil, nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatal("the events a crash left were not published")
	}
	if pending, _ := r.db.PendingEvents(context.Background(), 1); len(pending) != 0 {
		t.Fatalf("still pending: %+v", pending)
	}
}

// The bus starts with every machine's state, every BMC's last polled
// status (a BMC not polled yet has nothing to say) and every unfinished task.
func TestCurrentMessages(t *testing.T) {
	now := time.Now()
	msgs := currentMessages(
		[]domain.Machine{{ID: "m1", State: domain.Ready(), Since: now}},
		[]bmc.Status{{ID: "bmc-a", Reachable: true, ChangedAt: now}, {ID: "bmc-new"}},
		[]store.Task{{ID: "t1", Kind: "firmware-update", Status: "running", Params: "{}", Result: "{}"}})
	var topics []string
	for _, m := range msgs {
		if !m.Retain || m.QoS != 1 {
			t.Errorf("%s: retain %v qos %d", m.Topic, m.Retain, m.QoS)
		}
		topics = append(topics, m.Topic)
	}
	want := "NICO/v1/machine/m1/state slipway/v1/bmc/bmc-a/state slipway/v1/task/t1"
	if got := strings.Join(topics, " "); got != want {
		t.Errorf("topics %s, want %s", got, want)
	}
}
