package relay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/broker"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

type fixture struct {
	relay    *Relay
	consumer *outbox.Consumer
	all      <-chan struct{} // closed once the subscriber has every event
}

// newFixture is a store with n events behind the relay's cursor and a
// broker with one QoS 1 subscriber counting what arrives.
func newFixture(tb testing.TB, n int) fixture {
	tb.Helper()
	ctx := context.Background()
	db, commit := testkit.OpenStore(tb)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.New(broker.Config{Addr: netip.MustParseAddr("127.0.0.1"), Port: testkit.FreePort(tb, "tcp"), Access: broker.Access{Anonymous: true}, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	if err := b.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	err = db.Update(ctx, func(tx *store.Tx) error {
		for i := range n {
			m := outbox.Message{Topic: fmt.Sprintf("NICO/v1/machine/m%d/state", i%1000), Payload: []byte(`{"state":"ready"}`), QoS: 1, Retain: true}
			outbox.Enqueue(tx, m)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	all := make(chan struct{})
	got := 0
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b.Addrs()[0].String()).SetClientID(fmt.Sprintf("relay-test-%d", time.Now().UnixNano())))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("connect: %v", tok.Error())
	}
	tb.Cleanup(func() { c.Disconnect(10) })
	msgs := make(chan struct{}, n)
	if tok := c.Subscribe("NICO/#", 1, func(paho.Client, paho.Message) { msgs <- struct{}{} }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("subscribe: %v", tok.Error())
	}
	go func() {
		for range msgs {
			if got++; got == n {
				close(all)
			}
		}
	}()
	consumer, err := outbox.New(outbox.Config{DB: db, Commit: commit, Log: quiet}).Open(ctx, ConsumerName)
	if err != nil {
		tb.Fatal(err)
	}
	return fixture{relay: New(consumer, b, quiet, prometheus.NewRegistry()), consumer: consumer, all: all}
}

func (f fixture) waitForAll(tb testing.TB) {
	tb.Helper()
	select {
	case <-f.all:
	case <-time.After(10 * time.Second):
		tb.Fatal("the subscriber did not get every event")
	}
}

func (f fixture) nothingLeft(tb testing.TB) {
	tb.Helper()
	if left, err := f.consumer.Next(context.Background(), 1); err != nil || len(left) != 0 {
		tb.Fatalf("still pending: %+v %v", left, err)
	}
}

// The relay publishes everything pending, in order, and moves its cursor.
func TestRelayDrainsTheOutbox(t *testing.T) {
	f := newFixture(t, 1500)
	n, err := f.relay.drain(context.Background())
	if err != nil || n != 1500 {
		t.Fatalf("drained %d, %v", n, err)
	}
	f.waitForAll(t)
	f.nothingLeft(t)
}

// BenchmarkRelay is events per second from the outbox to a subscriber.
func BenchmarkRelay(b *testing.B) {
	const n = 10000
	for b.Loop() {
		b.StopTimer()
		f := newFixture(b, n)
		b.StartTimer()
		if _, err := f.relay.drain(context.Background()); err != nil {
			b.Fatal(err)
		}
		<-f.all
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// At start the relay publishes what a crash left, then the current
// messages, so retained messages are whole before the first subscriber.
func TestRelaySeedPublishesLeftoversThenCurrent(t *testing.T) {
	f := newFixture(t, 10)
	current := []outbox.Message{{Topic: "NICO/v1/machine/x/state", Payload: []byte(`{}`), QoS: 1, Retain: true}}
	if err := f.relay.Seed(context.Background(), current); err != nil {
		t.Fatal(err)
	}
	f.waitForAll(t)
	f.nothingLeft(t)
}
