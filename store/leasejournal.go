package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The leases' journal. A DHCP server must hold a lease on disk before it
// sends the ACK (RFC 2131 §3.1, step 4), and a client waits for the ACK: a
// SQLite transaction per lease (begin, upsert, commit with its WAL frames)
// put more than the rest of the exchange on that wait. The journal is a
// file beside the database to which a lease decision is written with one
// pwrite (and, with store.sync full, one fdatasync shared by every writer
// waiting), and from which the leases are applied to the leases table a
// little later, by whichever write transaction begins next. Readers of
// leases apply it first, so nobody reads a table behind the decisions.
//
// The file is preallocated with zeros, so that a record rewrites blocks
// that already exist and fdatasync has no metadata to flush, and it is
// rewritten from the start once every record in it is applied. A record is
//
//	uint32 length of the payload (little-endian; 0 ends the journal)
//	uint32 CRC-32C of the sequence number and the payload
//	uint64 sequence number, one more than the record before it
//	payload: the lease as JSON
//
// so replay reads records from the start while each is whole and follows
// the one before it: a record torn by a crash, zeros, or an older record
// left behind a rewrite ends it. The leases table keeps the sequence number
// of the last record it holds (lease_journal.seq, written in the same
// commit), so replay applies only what the table does not hold yet.

// LeaseJournalSuffix names the journal: the database's path and this.
const LeaseJournalSuffix = "-leases"

const (
	journalHeader    = 16
	maxJournalRecord = 4 << 10 // a lease is about 150 bytes
	// journalPrealloc holds some 7,000 leases not yet applied; past it
	// the file grows, and fdatasync then flushes its new size too.
	journalPrealloc = 1 << 20
	// journalApplyDelay gathers the leases of a busy moment into one
	// transaction: nobody waits for the table, only for the journal.
	journalApplyDelay = 20 * time.Millisecond
	// journalRetry is how soon a failed apply (a full disk) is tried again.
	journalRetry = time.Second
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// LeaseTicket is a lease's place in the journal, for LeaseDurable.
type LeaseTicket uint64

// journalRecord is a lease as the journal holds it.
type journalRecord struct {
	IP       string    `json:"ip"`
	MAC      string    `json:"mac"`
	Hostname string    `json:"hostname,omitempty"`
	State    string    `json:"state"`
	Expires  time.Time `json:"expires"`
	Updated  time.Time `json:"updated"`
}

// journaled is one record and its sequence number.
type journaled struct {
	seq    uint64
	record journalRecord
}

// leaseJournal is the open journal of one store.
type leaseJournal struct {
	path string
	file *os.File
	fd   int
	// syncWrites: store.sync full, where a lease counts once fdatasync
	// (or a commit, which syncs too) has it on disk.
	syncWrites bool

	mu       sync.Mutex
	synced   *sync.Cond // broadcast when a sync ends or leases are applied
	offset   int64      // where the next record goes
	seq      uint64     // the last record's number
	durable  uint64     // records up to here are on disk
	applied  uint64     // records up to here are in the leases table
	syncing  bool
	pending  []journaled // written, not yet applied, in order
	buf      []byte
	appliedC chan struct{} // wakes the applier
}

// openLeaseJournal opens (creating and preallocating it if need be) the
// journal at path and reads the records it holds. It takes an exclusive
// lock on the file: two processes writing one database's leases would
// each overwrite the other's records.
func openLeaseJournal(path string, syncWrites bool) (*leaseJournal, []journaled, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open lease journal: %w", err)
	}
	fd := int(f.Fd())
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil, fmt.Errorf("lease journal %s is locked: another Slipway uses this database; stop it first", path)
		}
		return nil, nil, fmt.Errorf("lock lease journal %s: %w", path, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("read lease journal %s: %w", path, err)
	}
	records, end, err := parseLeaseJournal(data)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("lease journal %s: %w (move it aside to start without the leases it holds)", path, err)
	}
	if err := preallocate(f, int64(len(data))); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("lease journal %s: %w", path, err)
	}
	j := &leaseJournal{path: path, file: f, fd: fd, syncWrites: syncWrites, offset: end, appliedC: make(chan struct{}, 1)}
	j.synced = sync.NewCond(&j.mu)
	return j, records, nil
}

// preallocate fills the journal with zeros up to journalPrealloc, on disk
// with its directory entry, once.
func preallocate(f *os.File, size int64) error {
	if size >= journalPrealloc {
		return nil
	}
	if _, err := f.WriteAt(make([]byte, journalPrealloc-size), size); err != nil {
		return fmt.Errorf("preallocate: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("preallocate: %w", err)
	}
	dir, err := os.Open(filepath.Dir(f.Name()))
	if err != nil {
		return fmt.Errorf("preallocate: %w", err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("preallocate: %w", err)
	}
	return nil
}

// parseLeaseJournal reads the run of whole, consecutive records at the
// start of data and where it ends. A record that is whole (its checksum
// holds) but not a lease is an error: it was written by something else.
func parseLeaseJournal(data []byte) ([]journaled, int64, error) {
	var out []journaled
	var off int
	for len(data)-off >= journalHeader {
		n := int(binary.LittleEndian.Uint32(data[off:]))
		if n == 0 || n > maxJournalRecord || n > len(data)-off-journalHeader {
			break
		}
		body := data[off+8 : off+journalHeader+n]
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(data[off+4:]) {
			break
		}
		seq := binary.LittleEndian.Uint64(body)
		if len(out) > 0 && seq != out[len(out)-1].seq+1 {
			break // a record left from before the journal was rewritten
		}
		var r journalRecord
		if err := json.Unmarshal(body[8:], &r); err != nil || r.IP == "" || r.MAC == "" || r.State == "" {
			return nil, 0, fmt.Errorf("record %d at byte %d is not a lease", seq, off)
		}
		out = append(out, journaled{seq: seq, record: r})
		off += journalHeader + n
	}
	return out, int64(off), nil
}

// resume sets where numbering goes on after replay: after both the
// journal's last record and the table's.
func (j *leaseJournal) resume(records []journaled, appliedSeq uint64) {
	j.seq = appliedSeq
	if n := len(records); n > 0 && records[n-1].seq > j.seq {
		j.seq = records[n-1].seq
	}
	j.applied, j.durable = appliedSeq, appliedSeq
	for _, r := range records {
		if r.seq > appliedSeq {
			j.pending = append(j.pending, r)
		}
	}
	if len(j.pending) == 0 {
		// Nothing to keep: numbering goes on from the start of the file,
		// which may follow a record its number does not follow.
		j.offset = 0
	}
}

// write appends r and returns its number; the caller's order of calls is
// the order in which the leases are applied.
func (j *leaseJournal) write(r journalRecord) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	seq := j.seq + 1
	var err error
	if j.buf, err = appendJournalRecord(j.buf[:0], seq, r); err != nil {
		return 0, fmt.Errorf("journal lease %s: %w", r.IP, err)
	}
	if _, err := j.file.WriteAt(j.buf, j.offset); err != nil {
		return 0, fmt.Errorf("journal lease %s: %w", r.IP, journalCondition(err))
	}
	j.offset += int64(len(j.buf))
	j.seq = seq
	j.pending = append(j.pending, journaled{seq: seq, record: r})
	select {
	case j.appliedC <- struct{}{}:
	default:
	}
	return seq, nil
}

// appendJournalRecord appends record seq, r, to dst.
func appendJournalRecord(dst []byte, seq uint64, r journalRecord) ([]byte, error) {
	payload, err := json.Marshal(r)
	if err != nil {
		return dst, err
	}
	if len(payload) > maxJournalRecord {
		return dst, fmt.Errorf("a lease of %d bytes is more than the journal's %d", len(payload), maxJournalRecord)
	}
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, 0) // the checksum, below
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = append(dst, payload...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+8:], castagnoli))
	return dst, nil
}

// journalCondition names a full disk as the store's other writes do.
func journalCondition(err error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("%w (%w)", ErrStorageFull, err)
	}
	if errors.Is(err, unix.EROFS) {
		return fmt.Errorf("%w (%w)", ErrStorageReadOnly, err)
	}
	return err
}

// waitDurable returns once record seq is on disk: at once unless writes
// are synced; else after an fdatasync begun after it was written, or a
// commit that applied it. One fdatasync serves every writer waiting.
func (j *leaseJournal) waitDurable(seq uint64) error {
	if !j.syncWrites {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for j.durable < seq {
		if j.syncing {
			j.synced.Wait()
			continue
		}
		j.syncing = true
		target := j.seq
		j.mu.Unlock()
		err := unix.Fdatasync(j.fd)
		j.mu.Lock()
		j.syncing = false
		j.synced.Broadcast()
		if err != nil {
			return fmt.Errorf("sync lease journal %s: %w", j.path, journalCondition(err))
		}
		j.durable = max(j.durable, target)
	}
	return nil
}

// take is what a transaction beginning now applies.
func (j *leaseJournal) take() []journaled {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.pending[:len(j.pending):len(j.pending)]
}

// hasPending says whether some lease is not in the table yet.
func (j *leaseJournal) hasPending() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.pending) > 0
}

// committed records that a commit applied the records up to seq. Once all
// are applied the journal is rewritten from its start: with synchronous
// FULL the commit is on disk, so nothing is lost if those bytes are.
func (j *leaseJournal) committed(seq uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	i := 0
	for i < len(j.pending) && j.pending[i].seq <= seq {
		i++
	}
	j.pending = append(j.pending[:0], j.pending[i:]...)
	j.applied = max(j.applied, seq)
	if j.syncWrites {
		j.durable = max(j.durable, seq)
		j.synced.Broadcast()
	}
	if j.applied == j.seq {
		j.offset = 0
	}
}

func (j *leaseJournal) close() error { return j.file.Close() }

// applyJournal writes the journal's pending leases into tx and says up to
// which record; 0 when there were none.
func (tx *Tx) applyJournal(j *leaseJournal) (uint64, error) {
	records := j.take()
	if len(records) == 0 {
		return 0, nil
	}
	for _, r := range records {
		l := r.record
		if _, err := tx.exec(putLeaseSQL, l.IP, l.MAC, l.Hostname, l.State, formatTime(l.Expires), formatTime(l.Updated)); err != nil {
			return 0, fmt.Errorf("apply journaled lease %s: %w", l.IP, err)
		}
	}
	last := records[len(records)-1].seq
	if _, err := tx.exec(`UPDATE lease_journal SET seq = ? WHERE id = 1`, int64(last)); err != nil {
		return 0, fmt.Errorf("apply lease journal: %w", err)
	}
	return last, nil
}

// JournalLease writes l to the leases' journal and returns its ticket for
// LeaseDurable. The leases table gets it with the next write transaction;
// the store's lease reads see it at once. Calls are applied in their order:
// a caller that decides leases under a lock journals them under it too.
func (s *Store) JournalLease(l Lease) (LeaseTicket, error) {
	updated := l.UpdatedAt
	if updated.IsZero() {
		updated = time.Now()
	}
	seq, err := s.journal.write(journalRecord{IP: l.IP, MAC: l.MAC, Hostname: l.Hostname, State: l.State, Expires: l.ExpiresAt.UTC(), Updated: updated.UTC()})
	return LeaseTicket(seq), err
}

// LeaseDurable returns once the journaled lease t is as durable as
// store.sync promises: on disk with full (a power cut keeps it), at once
// with normal (written, so the end of the process keeps it).
func (s *Store) LeaseDurable(ctx context.Context, t LeaseTicket) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.journal.waitDurable(uint64(t))
}

// LeasesUnapplied counts the journaled leases not yet in the leases table:
// a moment's worth while DHCP is busy; more, and growing, means the store
// cannot write (a full disk), though leases are still journaled.
func (s *Store) LeasesUnapplied() int {
	s.journal.mu.Lock()
	defer s.journal.mu.Unlock()
	return len(s.journal.pending)
}

// flushLeases applies the journal, so that a read of the leases table
// sees every lease decided before it.
func (s *Store) flushLeases(ctx context.Context) error {
	if !s.journal.hasPending() {
		return nil
	}
	return s.Update(ctx, func(*Tx) error { return nil })
}

// applyJournalLater applies the journal shortly after leases are written
// to it, when no other write has; a failure (a full disk) is retried.
func (s *Store) applyJournalLater() {
	defer close(s.applierDone)
	wait := time.NewTimer(0)
	<-wait.C
	for {
		select {
		case <-s.journal.appliedC:
		case <-s.stopApplier:
			return
		}
		delay := journalApplyDelay
		for {
			wait.Reset(delay)
			select {
			case <-wait.C:
			case <-s.stopApplier:
				return
			}
			if s.flushLeases(context.Background()) == nil {
				break
			}
			delay = journalRetry
		}
	}
}
