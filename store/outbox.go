package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Event is a message in the outbox. It is written in the same transaction
// as the change it announces, so a crash between commit and publish delays
// the message but never loses it. Consumers read events in id order, which
// is commit order, and keep their place with a cursor.
type Event struct {
	ID        int64
	Topic     string
	Payload   []byte
	QoS       byte
	Retain    bool
	CreatedAt time.Time
}

// Enqueue adds an event to the outbox. Its row is written with the
// transaction's other events just before the commit, several to a
// statement: a booting site announces two events for each heartbeat, and a
// statement each was a sixth of the one writer's work. Ids grow in the
// order events are enqueued, which is commit order, the order they are
// consumed in. A savepoint rolled back forgets the events enqueued in it.
func (tx *Tx) Enqueue(e Event) {
	if e.Payload == nil {
		// Empty, not NULL (which the column refuses): a row that fails
		// at the commit would fail every write of a group commit.
		e.Payload = []byte{}
	}
	tx.events = append(tx.events, e)
}

// eventInserts are the multi-row inserts the events are written with,
// largest first: as many of the largest as fit, then the next, so that few
// statements are prepared, each once, and none is built per commit.
var eventInserts = []eventInsert{newEventInsert(256), newEventInsert(64), newEventInsert(16), newEventInsert(4), newEventInsert(1)}

// eventInsert is the INSERT of rows outbox rows.
type eventInsert struct {
	rows int
	sql  string
}

func newEventInsert(rows int) eventInsert {
	return eventInsert{rows, "INSERT INTO outbox (topic, payload, qos, retain, created_at) VALUES " +
		strings.Repeat("(?, ?, ?, ?, ?), ", rows-1) + "(?, ?, ?, ?, ?)"}
}

// writeEvents inserts the events enqueued in the transaction, in order.
func (tx *Tx) writeEvents() error {
	rest := tx.events
	for _, insert := range eventInserts {
		for ; len(rest) >= insert.rows; rest = rest[insert.rows:] {
			if err := tx.insertEvents(insert.sql, rest[:insert.rows]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (tx *Tx) insertEvents(insert string, events []Event) error {
	args := make([]any, 0, 5*len(events))
	for _, e := range events {
		args = append(args, e.Topic, e.Payload, int(e.QoS), e.Retain, tx.nowText)
	}
	if _, err := tx.exec(insert, args...); err != nil {
		return fmt.Errorf("enqueue %d events (the first on %s): %w", len(events), events[0].Topic, err)
	}
	return nil
}

// EventsAfter returns up to limit events with ids above after, oldest first.
func (s *Store) EventsAfter(ctx context.Context, after int64, limit int) ([]Event, error) {
	return queryAll(ctx, s.read, "read outbox", func(r rowScanner) (e Event, err error) {
		var qos int
		err = r.Scan(&e.ID, &e.Topic, &e.Payload, &qos, &e.Retain, storedTime{t: &e.CreatedAt})
		e.QoS = byte(qos)
		return e, err
	}, `SELECT id, topic, payload, qos, retain, created_at FROM outbox WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
}

// LastEventID is the id of the newest event ever enqueued (0 for none),
// pruned or not.
func (s *Store) LastEventID(ctx context.Context) (int64, error) {
	var id int64
	err := s.read.QueryRowContext(ctx, `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)`).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("read the outbox's last id: %w", err)
	}
	return id, nil
}

// Cursor is where consumer is in the outbox; found is false for a consumer
// never seen.
func (s *Store) Cursor(ctx context.Context, consumer string) (lastID int64, found bool, err error) {
	err = s.read.QueryRowContext(ctx, `SELECT last_id FROM outbox_cursors WHERE consumer = ?`, consumer).Scan(&lastID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read the outbox cursor of %s: %w", consumer, err)
	}
	return lastID, true, nil
}

// Cursors are every stored consumer's place in the outbox.
func (s *Store) Cursors(ctx context.Context) (map[string]int64, error) {
	type row struct {
		consumer string
		last     int64
	}
	rows, err := queryAll(ctx, s.read, "read outbox cursors", func(r rowScanner) (c row, err error) {
		return c, r.Scan(&c.consumer, &c.last)
	}, `SELECT consumer, last_id FROM outbox_cursors`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.consumer] = r.last
	}
	return out, nil
}

// SetCursor records that consumer has handled every event up to and
// including lastID. A cursor never moves back.
func (tx *Tx) SetCursor(consumer string, lastID int64) error {
	_, err := tx.exec(`INSERT INTO outbox_cursors (consumer, last_id, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (consumer) DO UPDATE SET last_id = max(last_id, excluded.last_id), updated_at = excluded.updated_at`,
		consumer, lastID, tx.nowText)
	if err != nil {
		return fmt.Errorf("move the outbox cursor of %s to %d: %w", consumer, lastID, err)
	}
	return nil
}

// DeleteCursor forgets consumer's place, and says whether it had one.
func (tx *Tx) DeleteCursor(consumer string) (bool, error) {
	res, err := tx.exec(`DELETE FROM outbox_cursors WHERE consumer = ?`, consumer)
	if err != nil {
		return false, fmt.Errorf("delete the outbox cursor of %s: %w", consumer, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// PruneOutbox deletes the events up to and including throughID that were
// enqueued before before, and says how many.
func (s *Store) PruneOutbox(ctx context.Context, throughID int64, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM outbox WHERE id <= ? AND created_at < ?`, throughID, formatTime(before))
	if err != nil {
		return 0, fmt.Errorf("prune outbox: %w", err)
	}
	return res.RowsAffected()
}
