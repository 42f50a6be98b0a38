package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Committer groups small writes from many goroutines into shared
// transactions (group commit): one fsync makes a whole batch durable, so a
// DHCP storm is bounded by the disk's commit rate divided by the batch, not
// by one commit per packet. Each write runs in its own savepoint, so one
// failing write is rolled back alone and only its caller sees the error.
type Committer struct {
	s   *Store
	ops chan commitOp
	// urgent writes (DoUrgent) go into the next batch ahead of ops.
	urgent   chan commitOp
	maxBatch int
	wg       sync.WaitGroup
	once     sync.Once
	closed   chan struct{}
	// mu keeps Close from slipping in between Do's check and its send, which
	// would leave a write queued that nothing commits.
	mu       sync.RWMutex
	isClosed bool
}

type commitOp struct {
	fn     func(tx *Tx) error
	result chan error
}

// WritesPerCommit is the batch the appliance's committer is made with: a
// commit's fixed cost (the WAL's fsync) is shared by up to this many
// writes, and a batch is what is queued, never a number waited for. A
// 10,000-machine storm measured 70–78 s with 1,024 against 75 s with 256
// (2026-12-04, inside the runs' spread), so the smaller batch, whose
// commits hold the writer for less at a time, stays.
const WritesPerCommit = 256

// ErrCommitterClosed is returned by Do after Close.
var ErrCommitterClosed = errors.New("store: committer closed")

// NewCommitter starts a committer that puts at most maxBatch writes in one
// transaction.
func (s *Store) NewCommitter(maxBatch int) *Committer {
	if maxBatch < 1 {
		maxBatch = 1
	}
	c := &Committer{s: s, ops: make(chan commitOp, maxBatch), urgent: make(chan commitOp, maxBatch), maxBatch: maxBatch, closed: make(chan struct{})}
	c.wg.Add(1)
	go c.loop()
	return c
}

// Do runs fn in the next batch and returns its error once the batch is
// committed (so a nil error means fn's writes are durable). fn may be
// called together with other callers' functions in one transaction: it
// must not keep tx, and must not depend on running alone.
func (c *Committer) Do(ctx context.Context, fn func(tx *Tx) error) error {
	return c.do(ctx, c.ops, fn)
}

// DoUrgent is Do for a write a client waits on within a protocol's
// timeout (a DHCP exchange): it goes into the next batch ahead of every
// ordinary write still queued. A site booting queues thousands of
// heartbeats; behind them a DHCP offer waited seconds, past the
// firmware's patience.
func (c *Committer) DoUrgent(ctx context.Context, fn func(tx *Tx) error) error {
	return c.do(ctx, c.urgent, fn)
}

func (c *Committer) do(ctx context.Context, queue chan<- commitOp, fn func(tx *Tx) error) error {
	op := commitOp{fn: fn, result: make(chan error, 1)}
	c.mu.RLock()
	if c.isClosed {
		c.mu.RUnlock()
		return ErrCommitterClosed
	}
	select {
	case queue <- op:
		c.mu.RUnlock()
	case <-ctx.Done():
		c.mu.RUnlock()
		return ctx.Err()
	}
	// Once queued, the write happens; wait for its outcome even if ctx ends,
	// so the caller never believes a committed write failed.
	return <-op.result
}

// Close commits what is queued and stops the committer.
func (c *Committer) Close() {
	c.once.Do(func() {
		c.mu.Lock()
		c.isClosed = true
		c.mu.Unlock()
		close(c.closed)
		c.wg.Wait()
	})
}

func (c *Committer) loop() {
	defer c.wg.Done()
	for {
		first, ok := waiting(c.urgent)
		if !ok {
			select {
			case first = <-c.urgent:
			case first = <-c.ops:
			case <-c.closed:
				c.drainAfterClose()
				return
			}
		}
		c.commit(c.gather(first))
	}
}

// gather takes whatever else is already waiting, urgent writes first, up
// to the batch size.
func (c *Committer) gather(first commitOp) []commitOp {
	batch := []commitOp{first}
	for _, queue := range []chan commitOp{c.urgent, c.ops} {
		for len(batch) < c.maxBatch {
			op, ok := waiting(queue)
			if !ok {
				break
			}
			batch = append(batch, op)
		}
	}
	return batch
}

// waiting takes the next op of queue if one is there.
func waiting(queue chan commitOp) (commitOp, bool) {
	select {
	case op := <-queue:
		return op, true
	default:
		return commitOp{}, false
	}
}

func (c *Committer) drainAfterClose() {
	for {
		select {
		case op := <-c.urgent:
			c.commit(c.gather(op))
		case op := <-c.ops:
			c.commit(c.gather(op))
		default:
			return
		}
	}
}

func (c *Committer) commit(batch []commitOp) {
	results := make([]error, len(batch))
	err := c.s.Update(context.Background(), func(tx *Tx) error {
		if len(batch) == 1 {
			// Alone in its transaction, a write needs no savepoint: if it
			// fails, the rollback undoes it. At a steady rate most
			// batches are one write, and the savepoint was two
			// statements more per lease.
			results[0] = batch[0].fn(tx)
			return results[0]
		}
		for i, op := range batch {
			results[i] = tx.Savepoint(op.fn)
			// A full or read-only disk ends the whole transaction (SQLite
			// rolls it back on SQLITE_FULL): the ops after it must not run
			// outside it, and every op of the batch hears why.
			if cond := condition(results[i]); isCondition(cond) {
				return cond
			}
		}
		return nil
	})
	for i, op := range batch {
		if err != nil {
			results[i] = err
		}
		op.result <- condition(results[i])
	}
}

// isCondition says whether err is one of the storage's conditions.
func isCondition(err error) bool {
	return errors.Is(err, ErrStorageFull) || errors.Is(err, ErrStorageReadOnly) || errors.Is(err, ErrBusy)
}

// Savepoint runs fn so that, if it fails, only its own writes are undone
// and the transaction goes on. Savepoints nest: SQLite rolls back to and
// releases the innermost one of a name.
func (tx *Tx) Savepoint(fn func(tx *Tx) error) error {
	const name = "op"
	if _, err := tx.exec("SAVEPOINT " + name); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	enqueued := len(tx.events)
	if err := fn(tx); err != nil {
		tx.events = tx.events[:enqueued]
		if _, rerr := tx.exec("ROLLBACK TO " + name); rerr != nil {
			return errors.Join(err, fmt.Errorf("roll back to savepoint: %w", rerr))
		}
		_, _ = tx.exec("RELEASE " + name)
		return err
	}
	if _, err := tx.exec("RELEASE " + name); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}
