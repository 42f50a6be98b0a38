package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotFound is returned by reads of a row that does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write would break a uniqueness rule, such
// as a MAC that already belongs to another machine.
var ErrConflict = errors.New("conflict")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is an open Slipway database.
type Store struct {
	db   *sql.DB
	path string
	// Writes go through one connection, one at a time (SQLite has one
	// writer anyway): they queue on writeSlot in order instead of polling
	// SQLite's lock, and that connection keeps the write statements
	// prepared across transactions. Preparing them per transaction cost a
	// fifth of a DHCP storm's CPU when batches were small.
	writer    *sql.Conn
	writeSlot chan struct{}
	stmts     map[string]*sql.Stmt // used with writeSlot held
	// read is the read side, its queries prepared once for the process:
	// parsing the SQL of a small lookup cost more than running it (half
	// of a heartbeat's CPU in a boot storm).
	read      reader
	closeOnce sync.Once
	closed    chan struct{}
	// eventsCommitted is called after each commit that wrote outbox
	// events (OnEventsCommitted).
	eventsCommitted atomic.Pointer[func()]
	// journal holds leases decided and not yet in the leases table
	// (JournalLease); every write transaction applies them first. It is
	// nil while migrations run.
	journal                  *leaseJournal
	stopApplier, applierDone chan struct{}
}

// OnEventsCommitted has fn called after every commit that wrote outbox
// events, on the writing goroutine: fn must not block or write. The store
// writes the events itself (Tx.Enqueue), so it, not each caller, knows.
func (s *Store) OnEventsCommitted(fn func()) { s.eventsCommitted.Store(&fn) }

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("store: database closed")

// Options tune Open.
type Options struct {
	// BusyTimeout is how long a writer waits for the lock before failing.
	BusyTimeout time.Duration
	// Sync is SQLite's synchronous setting: SyncFull (the default) makes
	// every commit durable before it returns; SyncNormal leaves the WAL's
	// fsync to checkpoints, which survives a crash of the process but may
	// lose the last commits to a power cut.
	Sync string
}

// The Sync settings.
const (
	SyncFull   = "full"
	SyncNormal = "normal"
)

// Open opens (creating if needed) the database at path and brings its schema
// up to date.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	switch opts.Sync {
	case "", SyncFull, SyncNormal:
	default:
		return nil, fmt.Errorf("open database %s: sync %q is neither %q nor %q", path, opts.Sync, SyncFull, SyncNormal)
	}
	if err := ownerOnly(path); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(path, opts))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// Connections are kept, not closed when idle (database/sql keeps two
	// by default): each new one opens the file, reads the schema and
	// prepares its statements again, which under a boot storm's reads
	// was most of their cost.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	s := &Store{db: db, path: path, writeSlot: make(chan struct{}, 1), stmts: map[string]*sql.Stmt{}, closed: make(chan struct{})}
	s.read = reader{db: db, stmts: &readStatements{byQuery: map[string]*sql.Stmt{}}}
	if s.writer, err = db.Conn(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// The one writer walks every table's indexes for every write: with
	// SQLite's default 2 MB page cache, a site's database (10,000
	// machines, their heartbeats, transitions and events) no longer fits,
	// and each write read pages back from the OS. Readers keep the default.
	if _, err := s.writer.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = -%d", writerCacheKiB)); err != nil {
		s.writer.Close()
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := s.check(ctx); err != nil {
		s.writer.Close()
		db.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.writer.Close()
		db.Close()
		return nil, err
	}
	if err := s.openJournal(ctx, opts.Sync != SyncNormal); err != nil {
		s.writer.Close()
		db.Close()
		return nil, err
	}
	return s, nil
}

// openJournal opens the leases' journal, applies what it holds that the
// table does not (leases decided before a crash), and starts applying it.
func (s *Store) openJournal(ctx context.Context, syncWrites bool) error {
	j, records, err := openLeaseJournal(s.path+LeaseJournalSuffix, syncWrites)
	if err != nil {
		return err
	}
	var applied int64
	if err := s.writer.QueryRowContext(ctx, `SELECT seq FROM lease_journal WHERE id = 1`).Scan(&applied); err != nil {
		j.close()
		return fmt.Errorf("open database %s: read how far the lease journal is applied: %w", s.path, err)
	}
	j.resume(records, uint64(applied))
	s.journal = j
	if err := s.flushLeases(ctx); err != nil {
		s.journal = nil
		j.close()
		return fmt.Errorf("open database %s: apply the leases of its journal: %w", s.path, err)
	}
	s.stopApplier, s.applierDone = make(chan struct{}), make(chan struct{})
	go s.applyJournalLater()
	return nil
}

// ownerOnly makes the database file (created empty if need be) readable by
// its owner alone: it holds leases, users' password hashes and sealed BMC
// secrets. SQLite gives its WAL and shared-memory files the database's
// permissions.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	f.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("database %s: make it readable by its owner only: %w", path, err)
	}
	for _, side := range []string{"-wal", "-shm", LeaseJournalSuffix} {
		if err := os.Chmod(path+side, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("database %s: make it readable by its owner only: %w", path+side, err)
		}
	}
	return nil
}

// writerCacheKiB is the writer connection's page cache: it grows only as
// the database does, up to this.
const writerCacheKiB = 32 << 10

func dsn(p string, opts Options) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	sync := SyncFull
	if opts.Sync != "" {
		sync = opts.Sync
	}
	q.Add("_pragma", "synchronous("+strings.ToUpper(sync)+")")
	q.Add("_pragma", "foreign_keys(1)")
	// Savepoints (one per write in a group commit) journal into temp
	// storage: keep it in memory rather than in a temporary file.
	q.Add("_pragma", "temp_store(MEMORY)")
	// IMMEDIATE takes the write lock at BEGIN, so two writers queue on the
	// busy timeout instead of one failing at its first write.
	q.Set("_txlock", "immediate")
	return (&url.URL{Scheme: "file", OmitHost: true, Path: p, RawQuery: q.Encode()}).String()
}

// check fails early, with the path in the message, when the file is not a
// database or is damaged.
func (s *Store) check(ctx context.Context) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("open database %s: %w", s.path, err)
	}
	if mode != "wal" {
		return fmt.Errorf("open database %s: journal mode is %q, want wal (is the directory writable?)", s.path, mode)
	}
	var result string
	if err := s.db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&result); err != nil {
		return fmt.Errorf("check database %s: %w", s.path, err)
	}
	if result != "ok" {
		return fmt.Errorf("database %s is damaged (%s); restore it from a backup", s.path, result)
	}
	return nil
}

// Close checkpoints the WAL into the main file and closes the database.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.close() })
	return err
}

func (s *Store) close() error {
	close(s.stopApplier)
	<-s.applierDone
	// What is left in the journal is applied by the next Open if not now.
	jerr := s.flushLeases(context.Background())
	s.writeSlot <- struct{}{} // the write under way ends; no other starts
	close(s.closed)
	for _, stmt := range s.stmts {
		stmt.Close()
	}
	s.read.close()
	s.writer.Close()
	_, cerr := s.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	s.journal.close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close database %s: %w", s.path, err)
	}
	if cerr != nil {
		return fmt.Errorf("checkpoint database %s: %w", s.path, cerr)
	}
	if jerr != nil {
		return fmt.Errorf("close database %s: the lease journal is applied at the next start: %w", s.path, jerr)
	}
	return nil
}

// Ping reports whether the database answers, for readiness checks.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Path is the database file.
func (s *Store) Path() string { return s.path }

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s is not named NNNN_name.sql", e.Name())
		}
		body, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations must be numbered 1, 2, 3…; found %04d at position %d", m.version, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the number of the last migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	current, err := s.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("read schema version of %s: %w", s.path, err)
	}
	if current > len(ms) {
		return fmt.Errorf("database %s has schema version %d, newer than this Slipway knows (%d): run the newer Slipway or restore a backup", s.path, current, len(ms))
	}
	for _, m := range ms[current:] {
		err := s.Update(ctx, func(tx *Tx) error {
			if _, err := tx.tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			// PRAGMA takes no parameters; the version is our own integer.
			_, err := tx.tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version))
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %04d_%s to %s: %w", m.version, m.name, s.path, err)
		}
	}
	return nil
}

// Tx is one write transaction; its methods are the typed writes.
type Tx struct {
	tx  *sql.Tx
	ctx context.Context
	now time.Time
	// nowText is now as stored: a group commit's writes all stamp it,
	// several times each.
	nowText string
	store   *Store
	// stmts are the store's statements bound to this transaction: a group
	// commit runs the same few statements many times, and parsing SQL was
	// a third of the time a DHCP storm spent in the store.
	stmts map[string]*sql.Stmt
	// events are the outbox rows enqueued, written together before the
	// commit (see Enqueue).
	events []Event
}

// Update runs fn in one IMMEDIATE transaction: it commits when fn returns
// nil and rolls back otherwise. fn must not keep tx after it returns. A
// failure on the storage's condition (full, read-only, busy) wraps
// ErrStorageFull, ErrStorageReadOnly or ErrBusy.
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) error {
	return condition(s.update(ctx, fn))
}

func (s *Store) update(ctx context.Context, fn func(tx *Tx) error) error {
	select {
	case <-s.closed:
		return ErrClosed
	default:
	}
	select {
	case s.writeSlot <- struct{}{}:
	case <-s.closed:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("begin transaction: %w", ctx.Err())
	}
	defer func() { <-s.writeSlot }()
	sqlTx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	now := time.Now().UTC()
	tx := &Tx{tx: sqlTx, ctx: ctx, now: now, nowText: formatTime(now), store: s, stmts: map[string]*sql.Stmt{}}
	// Journaled leases go first: decided before this transaction began,
	// they precede its writes, a lease of the same address among them.
	var journaled uint64
	if s.journal != nil {
		journaled, err = tx.applyJournal(s.journal)
	}
	if err == nil {
		err = fn(tx)
	}
	wroteEvents := len(tx.events) > 0
	if err == nil {
		err = tx.writeEvents()
	}
	if err != nil {
		if rerr := sqlTx.Rollback(); rerr != nil {
			return errors.Join(err, fmt.Errorf("roll back: %w", rerr))
		}
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if journaled > 0 {
		s.journal.committed(journaled)
	}
	if fn := s.eventsCommitted.Load(); fn != nil && wroteEvents {
		(*fn)()
	}
	return nil
}

// Now is the time this transaction stamps on the rows it writes.
func (tx *Tx) Now() time.Time { return tx.now }

func (tx *Tx) exec(query string, args ...any) (sql.Result, error) {
	stmt, err := tx.prepared(query)
	if err != nil {
		return nil, err
	}
	return stmt.ExecContext(tx.ctx, args...)
}

// queryRow is QueryRow with the statement prepared once per transaction.
func (tx *Tx) queryRow(query string, args ...any) rowScanner {
	stmt, err := tx.prepared(query)
	if err != nil {
		return errRow{err}
	}
	return stmt.QueryRowContext(tx.ctx, args...)
}

func (tx *Tx) prepared(query string) (*sql.Stmt, error) {
	stmt, ok := tx.stmts[query]
	if !ok {
		shared, err := tx.store.statement(tx.ctx, query)
		if err != nil {
			return nil, err
		}
		// database/sql reuses the statement its connection already
		// prepared; the transaction's handle is closed when it ends.
		stmt = tx.tx.StmtContext(tx.ctx, shared)
		tx.stmts[query] = stmt
	}
	return stmt, nil
}

// statement is query prepared once; the caller holds the write slot. It is
// prepared on the database, not on the writer connection: database/sql
// re-prepares a connection's own statement in every transaction, but
// keeps a database statement prepared per connection.
func (s *Store) statement(ctx context.Context, query string) (*sql.Stmt, error) {
	if stmt, ok := s.stmts[query]; ok {
		return stmt, nil
	}
	stmt, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.stmts[query] = stmt
	return stmt, nil
}

// errRow is a row whose query could not even be prepared.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// timeFormat is fixed-width so that stored times sort as text.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeFormat, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t, nil
}

// queryAll runs a query and scans every row with scan; what names the
// list in errors.
func queryAll[T any](ctx context.Context, q querier, what string, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// storedTime scans a stored time; a NULL is an error unless nullable, in
// which case it reads as the zero time.
type storedTime struct {
	t        *time.Time
	nullable bool
}

func (st storedTime) Scan(src any) error {
	if src == nil && st.nullable {
		*st.t = time.Time{}
		return nil
	}
	s, ok := src.(string)
	if !ok {
		return fmt.Errorf("stored time has type %T", src)
	}
	t, err := parseTime(s)
	*st.t = t
	return err
}

func optionalTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return formatTime(t)
}

// isUniqueViolation reports a UNIQUE or PRIMARY KEY constraint failure.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// What a write failed on, when it is the storage's condition rather than the
// write's own fault: callers tell the operator what to fix, and never
// answer "internal error" for it.
var (
	// ErrStorageFull: the disk holding the data directory is full.
	ErrStorageFull = errors.New("the disk holding the data directory is full: free space there, nothing was lost")
	// ErrStorageReadOnly: the data directory or its disk is read-only.
	ErrStorageReadOnly = errors.New("the data directory is read-only: make it writable, nothing was lost")
	// ErrBusy: the database stayed locked past store.busy_timeout.
	ErrBusy = errors.New("the database is busy: try again")
)

// condition names the storage condition err comes from, wrapping it, or
// returns err as it is.
func condition(err error) error {
	var se *sqlite.Error
	if err == nil || isCondition(err) || !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		return fmt.Errorf("%w (%w)", ErrStorageFull, err)
	case sqlite3.SQLITE_READONLY:
		return fmt.Errorf("%w (%w)", ErrStorageReadOnly, err)
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return fmt.Errorf("%w (%w)", ErrBusy, err)
	case sqlite3.SQLITE_IOERR:
		if se.Code() == sqlite3.SQLITE_IOERR_WRITE || se.Code() == sqlite3.SQLITE_IOERR_FSYNC {
			return fmt.Errorf("%w (%w)", ErrStorageFull, err)
		}
	}
	return err
}
