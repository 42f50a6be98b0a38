package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// StageEvent is one onboarding heartbeat a node posted while it installs.
type StageEvent struct {
	ID        int64
	MAC       string
	MachineID string // empty when the MAC belongs to no known machine
	Stage     string
	Phase     string
	Detail    string
	ClientIP  string
	At        time.Time
	Hostname  string // read only: the machine's inventory hostname
}

// AddStageEvent appends a heartbeat and returns it with its id and time.
func (tx *Tx) AddStageEvent(e StageEvent) (StageEvent, error) {
	e.At = tx.now
	res, err := tx.exec(`INSERT INTO stage_events (mac, machine_id, stage, phase, detail, client_ip, at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, e.MAC, sql.NullString{String: e.MachineID, Valid: e.MachineID != ""},
		e.Stage, e.Phase, e.Detail, e.ClientIP, formatTime(e.At))
	if err != nil {
		return e, fmt.Errorf("record stage %s/%s of %s: %w", e.Stage, e.Phase, e.MAC, err)
	}
	e.ID, err = res.LastInsertId()
	return e, err
}

const stageEventQuery = `SELECT e.id, e.mac, COALESCE(e.machine_id, ''), e.stage, e.phase, e.detail, e.client_ip, e.at,
	COALESCE(m.hostname, '') FROM stage_events e LEFT JOIN machines m ON m.id = e.machine_id `

func scanStageEvent(r rowScanner) (e StageEvent, err error) {
	return e, r.Scan(&e.ID, &e.MAC, &e.MachineID, &e.Stage, &e.Phase, &e.Detail, &e.ClientIP, storedTime{t: &e.At}, &e.Hostname)
}

// StageEvents returns a MAC's heartbeats, oldest first.
func (s *Store) StageEvents(ctx context.Context, mac string) ([]StageEvent, error) {
	return queryAll(ctx, s.read, "read stages of "+mac, scanStageEvent, stageEventQuery+`WHERE e.mac = ? ORDER BY e.id`, mac)
}

// AllStageEvents returns every heartbeat, grouped by MAC, oldest first.
func (s *Store) AllStageEvents(ctx context.Context) ([]StageEvent, error) {
	return s.StageEventsPage(ctx, "", 0)
}

// StageEventsPage returns the heartbeats of the first macs MACs after
// after (all of them if macs is 0), grouped by MAC, oldest first.
func (s *Store) StageEventsPage(ctx context.Context, after string, macs int) ([]StageEvent, error) {
	if macs <= 0 {
		macs = -1 // SQLite: no limit
	}
	return queryAll(ctx, s.read, "read stages", scanStageEvent, stageEventQuery+
		`WHERE e.mac IN (SELECT DISTINCT mac FROM stage_events WHERE mac > ? ORDER BY mac LIMIT ?) ORDER BY e.mac, e.id`, after, macs)
}

// TrimStageEvents keeps a MAC's newest keep heartbeats and forgets the
// older ones, returning how many it forgot.
func (tx *Tx) TrimStageEvents(mac string, keep int) (int64, error) {
	res, err := tx.exec(`DELETE FROM stage_events WHERE mac = ? AND id <=
		(SELECT id FROM stage_events WHERE mac = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`, mac, mac, keep)
	if err != nil {
		return 0, fmt.Errorf("trim heartbeats of %s: %w", mac, err)
	}
	return res.RowsAffected()
}

// PruneStageEvents forgets heartbeats older than before and returns how
// many it forgot.
func (s *Store) PruneStageEvents(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM stage_events WHERE at < ?`, formatTime(before))
	if err != nil {
		return 0, fmt.Errorf("prune heartbeats: %w", err)
	}
	return res.RowsAffected()
}

// DeleteStageEvents forgets the heartbeats of the given MACs and returns
// how many there were.
func (tx *Tx) DeleteStageEvents(macs []string) (int64, error) {
	var n int64
	for _, mac := range macs {
		res, err := tx.exec(`DELETE FROM stage_events WHERE mac = ?`, mac)
		if err != nil {
			return n, fmt.Errorf("forget heartbeats of %s: %w", mac, err)
		}
		d, _ := res.RowsAffected()
		n += d
	}
	return n, nil
}

// HasStageEvents says whether any of the given MACs posted a heartbeat.
func (tx *Tx) HasStageEvents(macs []string) (bool, error) {
	for _, mac := range macs {
		var one int
		err := tx.queryRow(`SELECT 1 FROM stage_events WHERE mac = ? LIMIT 1`, mac).Scan(&one)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("heartbeats of %s: %w", mac, err)
		}
	}
	return false, nil
}

// HeartbeatTarget is what recording a heartbeat of a MAC needs to know,
// read in one query: the machine that owns the MAC, its hostname and state,
// and the id of the MAC's newest heartbeat (0 if none).
type HeartbeatTarget struct {
	MachineState
	Hostname    string
	LastStageID int64
}

// HeartbeatTarget reads mac's HeartbeatTarget; ErrNotFound if no machine
// owns the MAC.
func (tx *Tx) HeartbeatTarget(mac string) (HeartbeatTarget, error) {
	var t HeartbeatTarget
	err := tx.queryRow(`SELECT m.id, m.source, m.hostname, m.state_json, m.state_since,
		COALESCE((SELECT MAX(id) FROM stage_events WHERE mac = ?), 0)
		FROM machine_macs mm JOIN machines m ON m.id = mm.machine_id WHERE mm.mac = ?`, mac, mac).
		Scan(&t.ID, &t.Source, &t.Hostname, &t.StateJSON, storedTime{t: &t.Since}, &t.LastStageID)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("MAC %s: %w", mac, ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("the machine of MAC %s: %w", mac, err)
	}
	return t, nil
}
