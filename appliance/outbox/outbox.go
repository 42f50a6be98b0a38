package outbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipway/slipway/store"
)

// Message is one announcement: where it goes and what it says. The doors
// give it its shape (an MQTT topic and payload); the model only carries it.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
}

// Event is a committed message and its place in the outbox.
type Event struct {
	ID int64
	Message
	At time.Time
}

// Enqueue writes m in tx; consumers see it once tx commits. Its row is
// written with the transaction (store.Tx.Enqueue), so a failure to write
// it is the transaction's.
func Enqueue(tx *store.Tx, m Message) {
	tx.Enqueue(store.Event{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain})
}

// Config says where the outbox is and how long it keeps events.
type Config struct {
	DB     *store.Store
	Commit *store.Committer // cursors move in the commits they follow
	Log    *slog.Logger
	// Keep is how long handled events stay, for looking into what was
	// sent (default 24 h).
	Keep time.Duration
	// MaxEvents caps how far behind the newest event a consumer may hold
	// pruning back (default 1,000,000).
	MaxEvents int64
	Now       func() time.Time
}

// Outbox hands committed messages to its consumers.
type Outbox struct {
	cfg       Config
	mu        sync.Mutex // held by Open, which writes through the committer
	consumers map[string]*Consumer
	// opened is every consumer, copied on each Open: Filled runs on the
	// store's writing goroutine, and must not wait for an Open that waits
	// for that goroutine.
	opened atomic.Pointer[[]*Consumer]
}

// New is the outbox of cfg.DB.
func New(cfg Config) *Outbox {
	cfg.Keep = cmp.Or(cfg.Keep, 24*time.Hour)
	cfg.MaxEvents = cmp.Or(cfg.MaxEvents, 1_000_000)
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	o := &Outbox{cfg: cfg, consumers: map[string]*Consumer{}}
	o.opened.Store(&[]*Consumer{})
	cfg.DB.OnEventsCommitted(o.Filled)
	return o
}

// Filled tells every consumer that a commit enqueued something; it never
// blocks. The store calls it after each such commit.
func (o *Outbox) Filled() {
	for _, c := range *o.opened.Load() {
		c.poke()
	}
}

// Open returns the consumer called name, at the place its cursor was left.
// A consumer never seen before starts at the newest event: it reads what is
// committed from now on.
func (o *Outbox) Open(ctx context.Context, name string) (*Consumer, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c, ok := o.consumers[name]; ok {
		return c, nil
	}
	last, found, err := o.cfg.DB.Cursor(ctx, name)
	if err != nil {
		return nil, err
	}
	if !found {
		if last, err = o.cfg.DB.LastEventID(ctx); err != nil {
			return nil, err
		}
		if err := o.cfg.Commit.Do(ctx, func(tx *store.Tx) error { return tx.SetCursor(name, last) }); err != nil {
			return nil, err
		}
		o.cfg.Log.Info("outbox consumer added; it reads from the newest event on", "consumer", name, "event_id", last)
	}
	c := &Consumer{o: o, name: name, wake: make(chan struct{}, 1), last: last}
	o.consumers[name] = c
	o.opened.Store(new(append(slices.Clone(*o.opened.Load()), c)))
	return c, nil
}

// Forget drops the place of a consumer that is no longer configured (an
// upstream bridge turned off), so that it does not hold pruning back; the
// events it had not read stay until they are pruned as usual. It must not
// be open.
func (o *Outbox) Forget(ctx context.Context, name string) error {
	var had bool
	err := o.cfg.Commit.Do(ctx, func(tx *store.Tx) (err error) {
		had, err = tx.DeleteCursor(name)
		return err
	})
	if err != nil {
		return err
	}
	if had {
		o.cfg.Log.Info("outbox consumer removed: what it had not read is no longer kept for it", "consumer", name)
	}
	return nil
}

// Consumer is one reader of the outbox with a durable cursor.
type Consumer struct {
	o    *Outbox
	name string
	wake chan struct{}

	mu   sync.Mutex
	last int64 // the last event handled: Next reads after it
	// saving: a goroutine is storing the cursor for Handled.
	saving bool
}

// Name is the consumer's name, its cursor's key.
func (c *Consumer) Name() string { return c.name }

// Woken is signalled after a commit enqueued something.
func (c *Consumer) Woken() <-chan struct{} { return c.wake }

func (c *Consumer) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Next returns up to limit events after the consumer's place, oldest first.
func (c *Consumer) Next(ctx context.Context, limit int) ([]Event, error) {
	return c.After(ctx, c.Place(), limit)
}

// After returns up to limit events after id, oldest first: a consumer
// with several batches in flight reads past its place.
func (c *Consumer) After(ctx context.Context, id int64, limit int) ([]Event, error) {
	rows, err := c.o.cfg.DB.EventsAfter(ctx, id, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox consumer %s: %w", c.name, err)
	}
	out := make([]Event, len(rows))
	for i, r := range rows {
		out[i] = Event{ID: r.ID, Message: Message{Topic: r.Topic, Payload: r.Payload, QoS: r.QoS, Retain: r.Retain}, At: r.CreatedAt}
	}
	return out, nil
}

// Place is the last event the consumer handled.
func (c *Consumer) Place() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Behind is how many events were committed after the consumer's place.
func (c *Consumer) Behind(ctx context.Context) (int64, error) {
	newest, err := c.o.cfg.DB.LastEventID(ctx)
	if err != nil {
		return 0, fmt.Errorf("outbox consumer %s: %w", c.name, err)
	}
	return max(newest-c.Place(), 0), nil
}

// Done records that every event up to and including id is handled. It goes
// through the committer: a write of its own would queue for the database
// behind a stream of heartbeat commits and fall behind.
func (c *Consumer) Done(ctx context.Context, id int64) error {
	if err := c.o.cfg.Commit.Do(ctx, func(tx *store.Tx) error { return tx.SetCursor(c.name, id) }); err != nil {
		return fmt.Errorf("outbox consumer %s: %w", c.name, err)
	}
	c.mu.Lock()
	c.last = max(c.last, id)
	c.mu.Unlock()
	return nil
}

// Handled is Done for a consumer to which an event handed out again after
// a crash does no harm (the broker: its subscribers hear at least once):
// the consumer moves on at once and its cursor is stored in the
// background, the newest place in one write however many came meanwhile.
// Done waits for its commit, which while a site onboards queues behind
// thousands of heartbeats: the relay published a batch every few seconds
// and MQTT subscribers heard of a booting machine a minute late.
func (c *Consumer) Handled(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = max(c.last, id)
	if !c.saving {
		c.saving = true
		go c.saveCursor()
	}
}

// SavePlaces stores every consumer's place now: at a clean stop, after
// the consumers are done and before the committer closes, so that a
// restart hands nothing out again.
func (o *Outbox) SavePlaces(ctx context.Context) error {
	var errs []error
	for _, c := range *o.opened.Load() {
		c.mu.Lock()
		at := c.last
		c.mu.Unlock()
		errs = append(errs, c.Done(ctx, at))
	}
	return errors.Join(errs...)
}

// saveCursor stores the consumer's place until it stops moving.
func (c *Consumer) saveCursor() {
	saved := int64(-1)
	for {
		c.mu.Lock()
		at := c.last
		if at == saved {
			c.saving = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if err := c.Done(context.Background(), at); err != nil {
			if !errors.Is(err, store.ErrCommitterClosed) {
				c.o.cfg.Log.Warn("outbox consumer: cannot store its place; what it handled since may be handed out again after a restart",
					"consumer", c.name, "event_id", at, "error", err)
			}
			c.mu.Lock()
			c.saving = false
			c.mu.Unlock()
			return
		}
		saved = at
	}
}

// Prune deletes the events every consumer has handled that are older than
// Keep. A consumer more than MaxEvents behind the newest event holds
// nothing back: the events it has not read are deleted all the same, and
// the log says so. It returns how many events went.
func (o *Outbox) Prune(ctx context.Context) (int64, error) {
	cursors, err := o.cfg.DB.Cursors(ctx)
	if err != nil {
		return 0, err
	}
	newest, err := o.cfg.DB.LastEventID(ctx)
	if err != nil {
		return 0, err
	}
	// Beyond the cap, events go whatever their age and whoever has not
	// read them: the disk matters more than a consumer that stopped.
	floor := newest - o.cfg.MaxEvents
	through := newest
	for name, last := range cursors {
		if last < floor {
			o.cfg.Log.Warn("an outbox consumer is too far behind: the events it has not read are pruned anyway",
				"consumer", name, "at_event", last, "newest_event", newest, "lost_through", floor)
		}
		through = min(through, max(last, floor))
	}
	now := o.cfg.Now()
	n, err := o.cfg.DB.PruneOutbox(ctx, through, now.Add(-o.cfg.Keep))
	if err != nil || floor <= 0 {
		return n, err
	}
	more, err := o.cfg.DB.PruneOutbox(ctx, floor, now.Add(time.Hour))
	return n + more, err
}

// RunPruning prunes every interval until ctx ends.
func (o *Outbox) RunPruning(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if n, err := o.Prune(ctx); err != nil {
				o.cfg.Log.Warn("cannot prune the outbox", "error", err)
			} else if n > 0 {
				o.cfg.Log.Debug("outbox pruned", "events", n)
			}
		}
	}
}
