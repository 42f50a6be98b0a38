package relay

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway/appliance/outbox"
)

// Consumer is the relay's place in the outbox.
type Consumer interface {
	Woken() <-chan struct{}
	Next(ctx context.Context, limit int) ([]outbox.Event, error)
	// Handled moves the consumer past id; its place is stored later (a
	// subscriber may hear an event twice after a crash, never miss one).
	Handled(id int64)
}

// Publisher is what the relay needs of the broker.
type Publisher interface {
	Publish(topic string, payload []byte, retain bool, qos byte) error
}

// ConsumerName is the relay's outbox cursor.
const ConsumerName = "mqtt"

const (
	batch = 512
	// retry is the pause after a drain that failed (the store refused to
	// read the outbox or to move the cursor).
	retry = 2 * time.Second
)

// Relay drains the outbox to the broker.
type Relay struct {
	from      Consumer
	pub       Publisher
	log       *slog.Logger
	published prometheus.Counter
}

// New is a relay from the consumer to the broker; its count of published
// events is registered with reg.
func New(from Consumer, pub Publisher, log *slog.Logger, reg prometheus.Registerer) *Relay {
	r := &Relay{from: from, pub: pub, log: log, published: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "slipway_events_published_total",
		Help: "Events (state changes, heartbeats) published on the MQTT bus from the outbox.",
	})}
	reg.MustRegister(r.published)
	return r
}

// Seed publishes, before any client can connect, what a crash left in the
// outbox and then current, so that the broker's retained messages (kept in
// memory) are whole again after a restart.
func (r *Relay) Seed(ctx context.Context, current []outbox.Message) error {
	left, err := r.drain(ctx)
	if err != nil {
		return err
	}
	if left > 0 {
		r.log.Info("events the last run committed but had not published are published now", "events", left)
	}
	for _, m := range current {
		if err := r.pub.Publish(m.Topic, m.Payload, m.Retain, m.QoS); err != nil {
			return err
		}
	}
	r.log.Info("current states published", "messages", len(current))
	return nil
}

// Run publishes whenever a commit wakes it, until ctx ends. It does not
// poll: a failed drain is retried after a pause, nothing else waits.
func (r *Relay) Run(ctx context.Context) error {
	for {
		var again <-chan time.Time
		if _, err := r.drain(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("cannot publish events; retrying", "error", err, "in", retry)
			again = time.After(retry)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.from.Woken():
		case <-again:
		}
	}
}

// drain publishes every pending event, oldest first, and says how many.
func (r *Relay) drain(ctx context.Context) (int, error) {
	n := 0
	for {
		events, err := r.from.Next(ctx, batch)
		if err != nil || len(events) == 0 {
			return n, err
		}
		for _, e := range events {
			// Publishing in-process only fails for a malformed message, which
			// a retry would not mend: log it and go on, never block the rest.
			if err := r.pub.Publish(e.Topic, e.Payload, e.Retain, e.QoS); err != nil {
				r.log.Error("event dropped: the broker refused it", "topic", e.Topic, "error", err)
			}
		}
		r.from.Handled(events[len(events)-1].ID)
		n += len(events)
		r.published.Add(float64(len(events)))
		if len(events) < batch {
			return n, nil
		}
	}
}
