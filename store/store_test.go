package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "slipway.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func created(id string, macs ...string) Machine {
	return Machine{ID: id, MACs: macs, Source: "config", State: "created", StateJSON: `{"state":"created"}`}
}

func create(t testing.TB, s *Store, m Machine) {
	t.Helper()
	if err := s.Update(context.Background(), func(tx *Tx) error { _, err := tx.CreateMachine(m, "test"); return err }); err != nil {
		t.Fatal(err)
	}
}

func TestOpenAppliesMigrationsOnceAndReopens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "slipway.db")
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		s, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != len(ms) {
			t.Fatalf("schema version = %d, %v; want %d", v, err, len(ms))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenRefusesANewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "slipway.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, path, Options{})
	if err == nil || !strings.Contains(err.Error(), "schema version 99, newer than this Slipway knows") {
		t.Fatalf("want a newer-schema error, got %v", err)
	}
}

func TestOpenRefusesAFileThatIsNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slipway.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path, Options{})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("want an error naming %s, got %v", path, err)
	}
}

func TestMachineLifecycleRows(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	create(t, s, created("m1", "52:54:00:00:00:01", "52:54:00:00:00:02"))

	m, err := s.MachineByMAC(ctx, "52:54:00:00:00:02")
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "m1" || len(m.MACs) != 2 || m.MACs[0] != "52:54:00:00:00:01" || m.State != "created" {
		t.Fatalf("MachineByMAC = %+v", m)
	}
	var moved Transition
	err = s.Update(ctx, func(tx *Tx) error {
		var err error
		moved, err = tx.Transition(Transition{MachineID: "m1", From: m.State, To: "hostinit", StateJSON: `{"state":"hostinit","machine_state":{"state":"init"}}`, Cause: "dhcp"}, m.StateJSON)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if moved.From != "created" || moved.Seq == 0 {
		t.Fatalf("transition = %+v", moved)
	}
	hist, err := s.Transitions(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].To != "created" || hist[1].From != "created" || hist[1].To != "hostinit" || hist[1].Cause != "dhcp" {
		t.Fatalf("history = %+v", hist)
	}
	// A writer that decided from the old state must not overwrite the new one.
	err = s.Update(ctx, func(tx *Tx) error {
		_, err := tx.Transition(Transition{MachineID: "m1", From: m.State, To: "failed", StateJSON: `{"state":"failed"}`}, m.StateJSON)
		return err
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("stale transition: want ErrConflict, got %v", err)
	}
	err = s.Update(ctx, func(tx *Tx) error {
		_, err := tx.Transition(Transition{MachineID: "nope", To: "ready"}, "")
		return err
	})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown machine: want ErrNotFound, got %v", err)
	}
}

// A move within one state (an installer's next stage) takes the UPDATE
// that leaves the state column alone: the machine keeps its place in the
// state filter, its new state_json and time are stored, the move is in its
// history, and a writer that decided from the old state_json still
// conflicts.
func TestTransitionWithinOneState(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	create(t, s, created("m1", "52:54:00:00:00:01"))
	m, err := s.MachineByMAC(ctx, "52:54:00:00:00:01")
	if err != nil {
		t.Fatal(err)
	}
	within := `{"state":"created","stage":"install"}`
	err = s.Update(ctx, func(tx *Tx) error {
		_, err := tx.Transition(Transition{MachineID: "m1", From: "created", To: "created", StateJSON: within, Cause: "heartbeat"}, m.StateJSON)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Machines(ctx, MachineFilter{State: "created"})
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 1 || in[0].StateJSON != within || in[0].State != "created" {
		t.Fatalf("machines in state created after a move within it = %+v", in)
	}
	if hist, err := s.Transitions(ctx, "m1"); err != nil || len(hist) != 2 || hist[1].Cause != "heartbeat" {
		t.Fatalf("history = %+v, %v", hist, err)
	}
	err = s.Update(ctx, func(tx *Tx) error {
		_, err := tx.Transition(Transition{MachineID: "m1", From: "created", To: "created", StateJSON: `{"state":"created"}`}, m.StateJSON)
		return err
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("stale move within one state: want ErrConflict, got %v", err)
	}
}

func TestCreateMachineConflictsRollBackWhole(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	create(t, s, created("m1", "52:54:00:00:00:01"))
	tests := []struct {
		name string
		m    Machine
	}{
		{"same id", created("m1", "52:54:00:00:00:09")},
		{"MAC of another machine", created("m2", "52:54:00:00:00:08", "52:54:00:00:00:01")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Update(ctx, func(tx *Tx) error { _, err := tx.CreateMachine(tt.m, "test"); return err })
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("want ErrConflict, got %v", err)
			}
			if _, err := s.MachineByMAC(ctx, tt.m.MACs[0]); !errors.Is(err, ErrNotFound) {
				t.Fatalf("half-created machine left behind: %v", err)
			}
		})
	}
}

func TestMachinesPagesAndFilters(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	for i := range 25 {
		m := created(fmt.Sprintf("m%02d", i), fmt.Sprintf("52:54:00:00:01:%02x", i))
		if i%5 == 0 {
			m.State, m.StateJSON = "ready", `{"state":"ready"}`
		}
		create(t, s, m)
	}
	var all []string
	for after := ""; ; {
		page, err := s.Machines(ctx, MachineFilter{AfterID: after, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			all = append(all, m.ID)
		}
		after = page[len(page)-1].ID
	}
	if len(all) != 25 || all[0] != "m00" || all[24] != "m24" {
		t.Fatalf("paged ids = %v", all)
	}
	ready, err := s.Machines(ctx, MachineFilter{State: "ready"})
	if err != nil || len(ready) != 5 {
		t.Fatalf("ready = %d machines, %v", len(ready), err)
	}
	for _, tt := range []struct {
		query, state string
		want         int
	}{
		{"m1", "", 10},              // m1, m10 … m19
		{"M1", "ready", 2},          // m10, m15: case-insensitive, with a state
		{"01:0a", "", 1},            // a MAC fragment
		{"%", "", 0},                // LIKE's wildcards are literal
		{"_", "", 0},                // (no id has them)
		{"52:54:00:00:01:", "", 25}, // every MAC
	} {
		got, err := s.Machines(ctx, MachineFilter{Query: tt.query, State: tt.state})
		if err != nil || len(got) != tt.want {
			t.Errorf("query %q state %q: %d machines, %v; want %d", tt.query, tt.state, len(got), err, tt.want)
		}
	}
	counts, err := s.CountMachinesByState(ctx)
	if err != nil || counts["ready"] != 5 || counts["created"] != 20 {
		t.Fatalf("counts = %v, %v", counts, err)
	}
}

func TestLeasesOneRowPerAddress(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	put := func(l Lease) {
		t.Helper()
		if err := s.Update(ctx, func(tx *Tx) error { return tx.PutLease(l) }); err != nil {
			t.Fatal(err)
		}
	}
	put(Lease{IP: "10.88.0.100", MAC: "52:54:00:00:00:01", State: "offered", ExpiresAt: exp})
	put(Lease{IP: "10.88.0.100", MAC: "52:54:00:00:00:01", State: "bound", ExpiresAt: exp, Hostname: "n1"})
	leases, err := s.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 1 || leases[0].State != "bound" || leases[0].Hostname != "n1" || !leases[0].ExpiresAt.Equal(exp) {
		t.Fatalf("leases = %+v", leases)
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.DeleteLease("10.88.0.100") }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lease(ctx, "10.88.0.100"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted lease: %v", err)
	}
}

func TestOutboxKeepsCommitOrderAndSurvivesRollback(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	for i := range 3 {
		err := s.Update(ctx, func(tx *Tx) error {
			tx.Enqueue(Event{Topic: "t", Payload: []byte{byte(i)}, QoS: 1, Retain: true})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx *Tx) error {
		tx.Enqueue(Event{Topic: "t", Payload: []byte("rolled back")})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v", err)
	}
	pending, err := s.EventsAfter(ctx, 0, 10)
	if err != nil || len(pending) != 3 {
		t.Fatalf("pending = %v, %v", pending, err)
	}
	for i, e := range pending {
		if e.Payload[0] != byte(i) || e.QoS != 1 || !e.Retain {
			t.Fatalf("event %d = %+v", i, e)
		}
	}
	if last, err := s.LastEventID(ctx); err != nil || last != pending[2].ID {
		t.Fatalf("last event id %d (%v), want %d", last, err, pending[2].ID)
	}
	if at, found, err := s.Cursor(ctx, "mqtt"); err != nil || !found || at != 0 {
		t.Fatalf("the relay's cursor starts at the start: %d %v %v", at, found, err)
	}
	if _, found, err := s.Cursor(ctx, "bridge"); err != nil || found {
		t.Fatalf("a cursor for a consumer never seen: %v %v", found, err)
	}
	move := func(to int64) {
		t.Helper()
		if err := s.Update(ctx, func(tx *Tx) error { return tx.SetCursor("bridge", to) }); err != nil {
			t.Fatal(err)
		}
	}
	move(pending[1].ID)
	move(pending[0].ID) // never back
	if at, found, err := s.Cursor(ctx, "bridge"); err != nil || !found || at != pending[1].ID {
		t.Fatalf("cursor at %d %v %v, want %d", at, found, err, pending[1].ID)
	}
	after, _ := s.EventsAfter(ctx, pending[1].ID, 10)
	if len(after) != 1 || after[0].Payload[0] != 2 {
		t.Fatalf("after the cursor = %+v", after)
	}
	if all, err := s.Cursors(ctx); err != nil || all["bridge"] != pending[1].ID || all["mqtt"] != 0 || len(all) != 2 {
		t.Fatalf("cursors %v %v", all, err)
	}
	if n, err := s.PruneOutbox(ctx, pending[1].ID, time.Now().Add(-time.Minute)); err != nil || n != 0 {
		t.Fatalf("pruned %d events younger than asked (%v)", n, err)
	}
	n, err := s.PruneOutbox(ctx, pending[1].ID, time.Now().Add(time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("pruned %d, %v", n, err)
	}
}

func TestTasksResumeList(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	create(t, s, created("m1", "52:54:00:00:00:01"))
	tasks := []Task{
		{ID: "t1", Kind: "firmware", MachineID: "m1", Status: "running", Step: "waitforupdatecompletion", Progress: 40},
		{ID: "t2", Kind: "firmware", Status: "succeeded", FinishedAt: time.Now()},
		{ID: "t3", Kind: "deploy", Status: "queued"},
	}
	for _, task := range tasks {
		if err := s.Update(ctx, func(tx *Tx) error { return tx.PutTask(task) }); err != nil {
			t.Fatal(err)
		}
	}
	open, err := s.UnfinishedTasks(ctx)
	if err != nil || len(open) != 2 || open[0].ID != "t1" || open[0].Step != "waitforupdatecompletion" || open[1].ID != "t3" {
		t.Fatalf("unfinished = %+v, %v", open, err)
	}
	done, err := s.Task(ctx, "t2")
	if err != nil || done.FinishedAt.IsZero() || done.Params != "{}" {
		t.Fatalf("t2 = %+v, %v", done, err)
	}
}

func TestStageEventsPerMAC(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	for _, stage := range []string{"boot", "install", "done"} {
		err := s.Update(ctx, func(tx *Tx) error {
			_, err := tx.AddStageEvent(StageEvent{MAC: "52:54:00:00:00:01", Stage: stage, Phase: "start", ClientIP: "10.88.0.100"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	events, err := s.StageEvents(ctx, "52:54:00:00:00:01")
	if err != nil || len(events) != 3 || events[2].Stage != "done" || events[0].MachineID != "" || events[0].Hostname != "" {
		t.Fatalf("events = %+v, %v", events, err)
	}
	// Once the MAC is a machine's, its heartbeats carry the machine's hostname.
	m := created("node-7", "52:54:00:00:00:07")
	m.Hostname = "node-7.lab"
	create(t, s, m)
	if err := s.Update(ctx, func(tx *Tx) error {
		_, err := tx.AddStageEvent(StageEvent{MAC: "52:54:00:00:00:07", MachineID: "node-7", Stage: "boot", Phase: "start"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	events, err = s.StageEvents(ctx, "52:54:00:00:00:07")
	if err != nil || len(events) != 1 || events[0].MachineID != "node-7" || events[0].Hostname != "node-7.lab" {
		t.Fatalf("events of a machine = %+v, %v", events, err)
	}
}

// Writers on several connections queue on the lock instead of failing.
func TestConcurrentWritersAllCommit(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	const writers, each = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- s.Update(ctx, func(tx *Tx) error {
					_, err := tx.AddStageEvent(StageEvent{MAC: fmt.Sprintf("w%d", w), Stage: "s", Phase: fmt.Sprint(i)})
					return err
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := s.db.QueryRow("SELECT count(*) FROM stage_events").Scan(&n); err != nil || n != writers*each {
		t.Fatalf("rows = %d, %v; want %d", n, err, writers*each)
	}
}

// BenchmarkMachinesPage10k is what the console's machines page costs with
// 10,000 machines: a page of 50, unfiltered and searched.
func BenchmarkMachinesPage10k(b *testing.B) {
	ctx := context.Background()
	s := openTest(b)
	err := s.Update(ctx, func(tx *Tx) error {
		for i := range 10000 {
			m := created(fmt.Sprintf("r%03d-t%02d", i/20, i%20), fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff))
			m.Hostname = fmt.Sprintf("node-%05d", i)
			if _, err := tx.CreateMachine(m, "bench"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range []MachineFilter{{Limit: 50}, {Limit: 50, AfterID: "r250-t00"}, {Limit: 50, Query: "node-0999"}, {Limit: 50, Query: "02:00:00:00:27:0f"}, {Limit: 50, State: "ready"}} {
		b.Run(fmt.Sprintf("q=%q,after=%q,state=%q", f.Query, f.AfterID, f.State), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Machines(ctx, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// openAtVersion is a database at path with the first n migrations only,
// as an older Slipway left it, to fill before Open migrates it.
func openAtVersion(t *testing.T, path string, n int) *sql.DB {
	t.Helper()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn(path, Options{BusyTimeout: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:n] {
		if _, err := db.Exec(m.sql); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", n)); err != nil {
		t.Fatal(err)
	}
	return db
}

// upgraded closes old, as an older Slipway left it, and opens it as this
// one does: its migrations applied.
func upgraded(t *testing.T, old *sql.DB, path string) *Store {
	t.Helper()
	old.Close()
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A database from before cursors: what the relay had published becomes the
// "mqtt" cursor, so nothing is published twice and nothing pending is lost.
func TestOutboxCursorsMigrationKeepsTheRelaysPlace(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "slipway.db")
	old := openAtVersion(t, path, 4)
	if _, err := old.Exec(`
		INSERT INTO outbox (topic, payload, qos, retain, created_at, published_at) VALUES
			('a', x'00', 1, 1, '2026-01-01T00:00:00.000000000Z', '2026-01-01T00:00:01.000000000Z'),
			('b', x'01', 1, 1, '2026-01-01T00:00:00.000000000Z', '2026-01-01T00:00:01.000000000Z'),
			('c', x'02', 1, 1, '2026-01-01T00:00:00.000000000Z', NULL)`); err != nil {
		t.Fatal(err)
	}
	s := upgraded(t, old, path)
	at, found, err := s.Cursor(ctx, "mqtt")
	if err != nil || !found || at != 2 {
		t.Fatalf("mqtt cursor %d %v %v, want 2", at, found, err)
	}
	pending, err := s.EventsAfter(ctx, at, 10)
	if err != nil || len(pending) != 1 || pending[0].Topic != "c" {
		t.Fatalf("pending after the migration: %+v %v", pending, err)
	}
}

// A batch's members are found through its index, not by reading every
// task.
func TestTasksInBatchUsesItsIndex(t *testing.T) {
	s := openTest(t)
	rows, err := s.db.Query(`EXPLAIN QUERY PLAN `+tasksInBatch, "firmware-update", "b1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if !strings.Contains(strings.Join(plan, "; "), "tasks_batch") {
		t.Errorf("query plan: %v", plan)
	}
}

// A BMC stored before records were per system keeps everything, and its
// endpoint may then hold a record per system.
func TestBMCSystemMigrationKeepsTheBMCs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "slipway.db")
	old := openAtVersion(t, path, 11)
	if _, err := old.Exec(`
		INSERT INTO machines (id, state, state_json, state_since, source, created_at, updated_at) VALUES ('m1', 'ready', '{}', '2026-01-01T00:00:00.000000000Z', 'config', '2026-01-01T00:00:00.000000000Z', '2026-01-01T00:00:00.000000000Z');
		INSERT INTO bmcs (id, endpoint, username, secret, machine_id, linked_by, source, inventory, override_pending, created_at, updated_at)
		VALUES ('bmc-a', 'https://a', 'root', x'01', 'm1', 'config', 'config', '{"serial":"S1"}', 'Pxe', '2026-01-01T00:00:00.000000000Z', '2026-01-01T00:00:00.000000000Z')`); err != nil {
		t.Fatal(err)
	}
	s := upgraded(t, old, path)
	b, err := s.BMC(ctx, "bmc-a")
	if err != nil || b.Endpoint != "https://a" || b.MachineID != "m1" || b.Inventory != `{"serial":"S1"}` || b.OverridePending != "Pxe" || b.System != "" {
		t.Fatalf("after the migration: %+v, %v", b, err)
	}
	err = s.Update(ctx, func(tx *Tx) error {
		return tx.PutBMC(BMC{ID: "bmc-a-2", Endpoint: "https://a", System: "/redfish/v1/Systems/2", Username: "root", Secret: []byte{1}, Source: "discovered"})
	})
	if err != nil {
		t.Fatalf("a second system's record: %v", err)
	}
	err = s.Update(ctx, func(tx *Tx) error {
		return tx.PutBMC(BMC{ID: "bmc-a-again", Endpoint: "https://a", Username: "root", Secret: []byte{1}, Source: "api"})
	})
	if err == nil {
		t.Fatal("two records of one endpoint's first system were accepted")
	}
}

// The database and its WAL are its owner's alone, even for a file an
// older version made world-readable.
func TestDatabaseFilesAreOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slipway.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(context.Background(), func(tx *Tx) error {
		return tx.PutLease(Lease{IP: "10.88.0.5", MAC: "02:00:00:00:00:01", State: "bound", ExpiresAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s is %v, want -rw-------", filepath.Base(f), perm)
		}
	}
}

// store.sync picks SQLite's synchronous mode; anything else is refused.
func TestSyncSetting(t *testing.T) {
	for _, tc := range []struct {
		sync string
		want int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{{"", 2}, {SyncFull, 2}, {SyncNormal, 1}, {"off", -1}} {
		t.Run(tc.sync, func(t *testing.T) {
			s, err := Open(context.Background(), filepath.Join(t.TempDir(), "slipway.db"), Options{Sync: tc.sync})
			if tc.want < 0 {
				if err == nil || !strings.Contains(err.Error(), `sync "off"`) {
					t.Fatalf("sync %q: %v, want it refused", tc.sync, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var got int
			if err := s.writer.QueryRowContext(context.Background(), "PRAGMA synchronous").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("sync %q: PRAGMA synchronous = %d, want %d", tc.sync, got, tc.want)
			}
		})
	}
}

// The writer's page cache holds a site's indexes; readers keep SQLite's
// default.
func TestWriterHasTheLargerPageCache(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var writer, reader int
	if err := s.writer.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&writer); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&reader); err != nil {
		t.Fatal(err)
	}
	if writer != -writerCacheKiB || reader == writer {
		t.Errorf("cache_size: writer %d, a reader %d; want the writer at %d", writer, reader, -writerCacheKiB)
	}
}

// A transaction's events are written several to a statement at its commit:
// whatever their number, every one arrives once, in the order enqueued,
// with ids in that order; and an event enqueued by a write whose savepoint
// is rolled back is forgotten with the rest of that write.
func TestEnqueuedEventsAreWrittenInOrder(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{1, 3, 5, 255, 256, 257, 700} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := openTest(t)
			err := s.Update(ctx, func(tx *Tx) error {
				for i := range n {
					tx.Enqueue(Event{Topic: fmt.Sprintf("t/%d", i), Payload: []byte{byte(i)}, QoS: 1, Retain: i%2 == 0})
				}
				tx.Enqueue(Event{Topic: "cleared"}) // no payload: stored empty
				if err := tx.Savepoint(func(tx *Tx) error {
					tx.Enqueue(Event{Topic: "rolled/back"})
					return errors.New("this write fails")
				}); err == nil {
					t.Fatal("the failing write did not fail")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			events, err := s.EventsAfter(ctx, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(events) != n+1 {
				t.Fatalf("%d events stored, want %d", len(events), n+1)
			}
			if last := events[n]; last.Topic != "cleared" || len(last.Payload) != 0 {
				t.Fatalf("the event without a payload = %+v", last)
			}
			for i, e := range events[:n] {
				if e.ID != int64(i+1) || e.Topic != fmt.Sprintf("t/%d", i) || e.Payload[0] != byte(i) || e.QoS != 1 || e.Retain != (i%2 == 0) {
					t.Fatalf("event %d = %+v", i, e)
				}
			}
		})
	}
}

// The store says when a commit wrote outbox events, once per such commit:
// not for a commit without events, nor for a transaction rolled back.
func TestEventsCommittedIsCalledAfterACommitThatWroteEvents(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	var calls int
	s.OnEventsCommitted(func() { calls++ })
	steps := []struct {
		name  string
		fn    func(tx *Tx) error
		calls int
	}{
		{"no events", func(tx *Tx) error { return tx.SetCursor("c", 1) }, 0},
		{"two events", func(tx *Tx) error { tx.Enqueue(Event{Topic: "a"}); tx.Enqueue(Event{Topic: "b"}); return nil }, 1},
		{"rolled back", func(tx *Tx) error { tx.Enqueue(Event{Topic: "c"}); return errors.New("no") }, 1},
		{"one event", func(tx *Tx) error { tx.Enqueue(Event{Topic: "d"}); return nil }, 2},
	}
	for _, step := range steps {
		_ = s.Update(ctx, step.fn)
		if calls != step.calls {
			t.Fatalf("after %q: called %d times, want %d", step.name, calls, step.calls)
		}
	}
}
