package appliance

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/broker"
	"github.com/slipway/slipway/store"
)

// publisher is what the relay needs of the broker.
type publisher interface {
	Publish(topic string, payload []byte, retain bool, qos byte) error
}

// relay drains the outbox to the broker: every event committed with a
// change is published after the commit, in commit order (so in order per
// machine), and marked published. Events left by a crash are published
// at the next start.
type relay struct {
	db        *store.Store
	commit    *store.Committer // marks share commits with the writes they follow
	pub       publisher
	log       *slog.Logger
	wake      chan struct{}
	published prometheus.Counter
}

const (
	relayBatch = 512
	// relayRetry is the pause after a drain that failed (the store refused
	// to read or mark the outbox).
	relayRetry = 2 * time.Second
	// outboxKeep is how long published events stay in the outbox, for
	// looking into what was sent.
	outboxKeep = 24 * time.Hour
)

func newRelay(db *store.Store, commit *store.Committer, pub publisher, log *slog.Logger, reg prometheus.Registerer) *relay {
	r := &relay{db: db, commit: commit, pub: pub, log: log, wake: make(chan struct{}, 1),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slipway_events_published_total",
			Help: "Events (state changes, heartbeats) published on the MQTT bus from the outbox.",
		})}
	reg.MustRegister(r.published)
	return r
}

// Wake tells the relay there is something to publish; it never blocks.
func (r *relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// seed publishes, before any client can connect, what a crash left in the
// outbox and then every machine's current state, so that the broker's
// retained messages (kept in memory) are whole again after a restart.
func (r *relay) seed(ctx context.Context, current []store.Event) error {
	left, err := r.drain(ctx)
	if err != nil {
		return err
	}
	if left > 0 {
		r.log.Info("events the last run committed but had not published are published now", "events", left)
	}
	for _, e := range current {
		if err := r.pub.Publish(e.Topic, e.Payload, e.Retain, e.QoS); err != nil {
			return err
		}
	}
	r.log.Info("current states published", "messages", len(current))
	return nil
}

// currentMessages are the retained messages the bus starts with: every
// machine's state, every BMC's status, every unfinished task. Quiet BMCs
// and machines publish nothing more until they change.
func currentMessages(machines []domain.Machine, bmcs []bmc.Status, tasks []store.Task) []store.Event {
	var events broker.Events
	out := make([]store.Event, 0, len(machines)+len(bmcs)+len(tasks))
	for _, m := range machines {
		out = append(out, events.StateMessage(m.ID, m.State, m.Since))
	}
	for _, s := range bmcs {
		if !s.ChangedAt.IsZero() { // never polled yet: its first poll will say
			out = append(out, events.BMCMessage(s))
		}
	}
	for _, t := range tasks {
		out = append(out, events.TaskMessage(t))
	}
	return out
}

// run publishes whenever a commit wakes it, until ctx ends. It does not
// poll: a failed drain is retried after relayRetry, nothing else waits.
func (r *relay) run(ctx context.Context) error {
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	for {
		var retry <-chan time.Time
		if _, err := r.drain(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("cannot publish events; retrying", "error", err, "in", relayRetry)
			retry = time.After(relayRetry)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-retry:
		case now := <-prune.C:
			if _, err := r.db.PruneOutbox(ctx, now.Add(-outboxKeep)); err != nil {
				r.log.Warn("cannot prune the outbox", "error", err)
			}
		}
	}
}

// drain publishes every pending event, oldest first, and says how many.
func (r *relay) drain(ctx context.Context) (int, error) {
	n := 0
	for {
		events, err := r.db.PendingEvents(ctx, relayBatch)
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
		// Through the committer: a write of its own would queue for the
		// database lock behind a stream of heartbeat commits and fall behind.
		last := events[len(events)-1].ID
		if err := r.commit.Do(ctx, func(tx *store.Tx) error { return tx.MarkPublishedThrough(last) }); err != nil {
			return n, err
		}
		n += len(events)
		r.published.Add(float64(len(events)))
		if len(events) < relayBatch {
			return n, nil
		}
	}
}

// retainedTasks are the tasks the bus starts with: every unfinished one and
// the last hundred, so a subscriber sees how recent updates ended.
func retainedTasks(ctx context.Context, db *store.Store) ([]store.Task, error) {
	recent, err := db.Tasks(ctx, "", 100)
	if err != nil {
		return nil, err
	}
	unfinished, err := db.UnfinishedTasks(ctx)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(recent))
	for _, t := range recent {
		seen[t.ID] = true
	}
	for _, t := range unfinished {
		if !seen[t.ID] {
			recent = append(recent, t)
		}
	}
	return recent, nil
}
