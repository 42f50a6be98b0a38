package store

import (
	"context"
	"fmt"
	"time"
)

// Event is a message waiting in the outbox to be published. It is written
// in the same transaction as the change it announces, so a crash between
// commit and publish delays the message but never loses it.
type Event struct {
	ID          int64
	Topic       string
	Payload     []byte
	QoS         byte
	Retain      bool
	CreatedAt   time.Time
	PublishedAt time.Time // zero while pending
}

// Enqueue adds an event to the outbox and returns its id; ids grow in commit
// order, which is the order events are published in.
func (tx *Tx) Enqueue(e Event) (int64, error) {
	res, err := tx.exec(`INSERT INTO outbox (topic, payload, qos, retain, created_at) VALUES (?, ?, ?, ?, ?)`,
		e.Topic, e.Payload, int(e.QoS), e.Retain, formatTime(tx.now))
	if err != nil {
		return 0, fmt.Errorf("enqueue event on %s: %w", e.Topic, err)
	}
	return res.LastInsertId()
}

// PendingEvents returns up to limit unpublished events, oldest first.
func (s *Store) PendingEvents(ctx context.Context, limit int) ([]Event, error) {
	return queryAll(ctx, s.db, "read outbox", func(r rowScanner) (e Event, err error) {
		var qos int
		err = r.Scan(&e.ID, &e.Topic, &e.Payload, &qos, &e.Retain, storedTime{t: &e.CreatedAt})
		e.QoS = byte(qos)
		return e, err
	}, `SELECT id, topic, payload, qos, retain, created_at FROM outbox
		WHERE published_at IS NULL ORDER BY id LIMIT ?`, limit)
}

// MarkPublishedThrough records that every pending event up to and
// including id was published. The relay publishes in id order, so one
// statement marks a whole batch.
func (tx *Tx) MarkPublishedThrough(id int64) error {
	if _, err := tx.exec(`UPDATE outbox SET published_at = ? WHERE id <= ? AND published_at IS NULL`, formatTime(tx.now), id); err != nil {
		return fmt.Errorf("mark events through %d published: %w", id, err)
	}
	return nil
}

// PruneOutbox deletes published events older than before, so the outbox
// does not grow without end.
func (s *Store) PruneOutbox(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < ?`, formatTime(before))
	if err != nil {
		return 0, fmt.Errorf("prune outbox: %w", err)
	}
	return res.RowsAffected()
}
