package outbox

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipway/slipway/store"
)

// Feed hands committed events to live subscribers (the console's event
// streams): one durable consumer reads the outbox and fans out. A
// subscriber that was away names the last event it saw and is given what
// it missed first, from the outbox, in order.
type Feed struct {
	from *Consumer
	o    *Outbox

	mu   sync.Mutex
	subs map[*Subscription]struct{}
	last int64 // the last event handed out
}

// Buffers: a subscriber this far behind is told it overflowed (and
// reloads what it shows); a replay of more than maxReplay events likewise.
// A commit of heartbeats announces two events for each (its stage and its
// state), so a subscriber holds four such commits (an event is about 80
// bytes: 160 KiB a subscriber). With room for one, the console's stream
// overflowed in every storm of 10,000 machines; with two, now and then
// (in 4 of 11 storms on 2026-12-05, when the two cores were busiest).
const (
	subscriberBuffer = 8 * store.WritesPerCommit
	maxReplay        = 10000
)

// NewFeed opens the consumer called name and returns its feed; Run it.
func (o *Outbox) NewFeed(ctx context.Context, name string) (*Feed, error) {
	c, err := o.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	return &Feed{from: c, o: o, subs: map[*Subscription]struct{}{}, last: last}, nil
}

// Run hands out every event committed, as commits wake it, until ctx ends.
// With nobody subscribed it reads nothing: during a storm of new machines
// the outbox is read by the MQTT relay alone, and this feed moves its
// cursor to the newest event now and then, and when someone subscribes.
func (f *Feed) Run(ctx context.Context) error {
	idle := time.NewTicker(idleSkip)
	defer idle.Stop()
	for {
		var again <-chan time.Time
		if f.Subscribers() > 0 {
			if err := f.drain(ctx); err != nil && ctx.Err() == nil {
				f.o.cfg.Log.Error("event feed: cannot read the outbox; retrying", "consumer", f.from.name, "error", err)
				again = time.After(2 * time.Second)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-f.from.Woken():
		case <-again:
		case <-idle.C:
			if f.Subscribers() == 0 {
				if err := f.skipAhead(ctx); err != nil && ctx.Err() == nil {
					f.o.cfg.Log.Warn("event feed: cannot move its cursor", "consumer", f.from.name, "error", err)
				}
			}
		}
	}
}

// idleSkip is how often a feed nobody reads moves its cursor.
const idleSkip = 10 * time.Second

// skipAhead moves an unread feed to the newest event: what nobody was
// subscribed to see is not handed out later.
func (f *Feed) skipAhead(ctx context.Context) error {
	newest, err := f.o.cfg.DB.LastEventID(ctx)
	if err != nil {
		return err
	}
	f.mu.Lock()
	behind := newest > f.last
	f.mu.Unlock()
	if !behind {
		return nil
	}
	if err := f.from.Done(ctx, newest); err != nil {
		return err
	}
	f.mu.Lock()
	f.last = max(f.last, newest)
	f.mu.Unlock()
	return nil
}

func (f *Feed) drain(ctx context.Context) error {
	for {
		events, err := f.from.Next(ctx, 512)
		if err != nil || len(events) == 0 {
			return err
		}
		f.mu.Lock()
		for _, e := range events {
			if e.ID <= f.last {
				continue // skipped ahead meanwhile
			}
			for s := range f.subs {
				s.offer(e)
			}
			f.last = e.ID
		}
		f.mu.Unlock()
		f.from.Handled(events[len(events)-1].ID)
	}
}

// Subscription is one subscriber's events, oldest first.
type Subscription struct {
	feed       *Feed
	c          chan Event
	overflowed atomic.Bool
	// While the events it missed are replayed, live ones wait here.
	replaying bool
	pending   []Event
}

// Events is the subscriber's channel.
func (s *Subscription) Events() <-chan Event { return s.c }

// Overflowed says, once, whether events were dropped since it last asked:
// the subscriber should reload what it shows.
func (s *Subscription) Overflowed() bool { return s.overflowed.Swap(false) }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	delete(s.feed.subs, s)
}

// offer hands e on, never blocking the feed; called under the feed's lock.
func (s *Subscription) offer(e Event) {
	if s.replaying {
		if len(s.pending) < subscriberBuffer {
			s.pending = append(s.pending, e)
		} else {
			s.overflowed.Store(true)
		}
		return
	}
	select {
	case s.c <- e:
	default:
		s.overflowed.Store(true)
	}
}

// Subscribe starts a subscription. after is the last event the subscriber
// saw (0: none, it wants what comes from now on): the events committed
// since are given first, then the live ones.
func (f *Feed) Subscribe(ctx context.Context, after int64) (*Subscription, error) {
	if f.Subscribers() == 0 {
		// Unread until now: catch up, so that "from now on" means now.
		if err := f.skipAhead(ctx); err != nil {
			return nil, err
		}
	}
	s := &Subscription{feed: f, c: make(chan Event, subscriberBuffer)}
	f.mu.Lock()
	live := f.last
	s.replaying = after > 0 && after < live
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	f.from.poke() // events committed while it was unread: hand them out
	if !s.replaying {
		return s, nil
	}
	if err := f.replay(ctx, s, after, live); err != nil {
		s.Close()
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	pending := s.pending
	s.replaying, s.pending = false, nil
	for _, e := range pending {
		s.offer(e)
	}
	return s, nil
}

// replay sends s the events after after, up to live, from the outbox.
func (f *Feed) replay(ctx context.Context, s *Subscription, after, live int64) error {
	sent := 0
	for after < live {
		rows, err := f.o.cfg.DB.EventsAfter(ctx, after, 512)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		if sent == 0 && rows[0].ID > after+1 && after > 0 {
			s.overflowed.Store(true) // pruned meanwhile: what it shows is stale
		}
		for _, r := range rows {
			if r.ID > live {
				return nil
			}
			if sent >= maxReplay || len(s.c) == cap(s.c) {
				s.overflowed.Store(true)
				return nil
			}
			s.c <- Event{ID: r.ID, Message: Message{Topic: r.Topic, Payload: r.Payload, QoS: r.QoS, Retain: r.Retain}, At: r.CreatedAt}
			sent++
			after = r.ID
		}
	}
	return nil
}

// Subscribers is how many subscriptions are open.
func (f *Feed) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}
