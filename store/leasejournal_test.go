package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// journalFile writes a journal as a process that stopped before applying
// it would have left it: records numbered from first.
func journalFile(t *testing.T, path string, first uint64, leases ...Lease) []byte {
	t.Helper()
	var data []byte
	for i, l := range leases {
		var err error
		data, err = appendJournalRecord(data, first+uint64(i), journalRecord{IP: l.IP, MAC: l.MAC, State: l.State, Expires: l.ExpiresAt, Updated: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path+LeaseJournalSuffix, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return data
}

func bound(ip, mac string) Lease {
	return Lease{IP: ip, MAC: mac, State: "bound", ExpiresAt: time.Now().Add(time.Hour).UTC()}
}

// newDatabase is a database created and closed, as a previous run left it.
func newDatabase(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slipway.db")
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// leaseStates is every stored lease as "ip mac state".
func leaseStates(t *testing.T, s *Store) []string {
	t.Helper()
	leases, err := s.Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range leases {
		out = append(out, l.IP+" "+l.MAC+" "+l.State)
	}
	return out
}

// What Open applies of a journal it finds: the records that follow each
// other from the start, whole, and not in the table already.
func TestLeaseJournalReplay(t *testing.T) {
	a, b, c := bound("10.0.0.1", "02:00:00:00:00:0a"), bound("10.0.0.2", "02:00:00:00:00:0b"), bound("10.0.0.3", "02:00:00:00:00:0c")
	cases := []struct {
		name string
		// journal writes the file the database is opened with.
		journal func(t *testing.T, path string)
		want    []string
	}{
		{"every record of a journal nobody applied", func(t *testing.T, path string) {
			journalFile(t, path, 1, a, b, c)
		}, []string{"10.0.0.1 02:00:00:00:00:0a bound", "10.0.0.2 02:00:00:00:00:0b bound", "10.0.0.3 02:00:00:00:00:0c bound"}},
		{"a later record of an address wins", func(t *testing.T, path string) {
			released := a
			released.State = "released"
			journalFile(t, path, 1, a, b, released)
		}, []string{"10.0.0.1 02:00:00:00:00:0a released", "10.0.0.2 02:00:00:00:00:0b bound"}},
		{"a record torn by the crash is not applied", func(t *testing.T, path string) {
			data := journalFile(t, path, 1, a, b, c)
			if err := os.WriteFile(path+LeaseJournalSuffix, data[:len(data)-5], 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"10.0.0.1 02:00:00:00:00:0a bound", "10.0.0.2 02:00:00:00:00:0b bound"}},
		{"a record whose bytes changed ends the journal", func(t *testing.T, path string) {
			data := journalFile(t, path, 1, a, b, c)
			first := journalHeader + int(binary.LittleEndian.Uint32(data))
			data[first+journalHeader+3] ^= 0x20 // inside the second record's payload
			if err := os.WriteFile(path+LeaseJournalSuffix, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"10.0.0.1 02:00:00:00:00:0a bound"}},
		{"a record left from before the journal was rewritten is not applied", func(t *testing.T, path string) {
			// Records 7 and 8 rewrote the start of a journal whose old
			// record 3 follows them.
			newer := journalFile(t, path, 7, a, b)
			older, _ := appendJournalRecord(nil, 3, journalRecord{IP: c.IP, MAC: c.MAC, State: c.State, Expires: c.ExpiresAt})
			if err := os.WriteFile(path+LeaseJournalSuffix, append(newer, older...), 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"10.0.0.1 02:00:00:00:00:0a bound", "10.0.0.2 02:00:00:00:00:0b bound"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := newDatabase(t)
			tc.journal(t, path)
			s, err := Open(context.Background(), path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := leaseStates(t, s); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("leases after replay:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// A record the table already holds is not applied again over what was
// written since: after a clean stop the journal still holds its records.
func TestLeaseJournalAppliesARecordOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "slipway.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.writeSlot <- struct{}{} // no transaction applies the journal until released
	ticket, err := s.JournalLease(bound("10.0.0.1", "02:00:00:00:00:0a"))
	if err == nil {
		err = s.LeaseDurable(ctx, ticket) // the journal's own sync, no transaction
	}
	unapplied := s.LeasesUnapplied()
	<-s.writeSlot
	if err != nil {
		t.Fatal(err)
	}
	if unapplied != 1 {
		t.Fatalf("%d leases unapplied before any write, want 1", unapplied)
	}
	if got := leaseStates(t, s); len(got) != 1 {
		t.Fatalf("a journaled lease is not read back: %v", got)
	}
	if n := s.LeasesUnapplied(); n != 0 {
		t.Fatalf("%d leases unapplied once read, want 0", n)
	}
	// Written straight to the table, after the journaled one was applied.
	if err := s.Update(ctx, func(tx *Tx) error {
		return tx.PutLease(Lease{IP: "10.0.0.1", MAC: "02:00:00:00:00:0b", State: "bound"})
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(path + LeaseJournalSuffix); err != nil || !strings.Contains(string(data), "02:00:00:00:00:0a") {
		t.Fatalf("the journal no longer holds its record (%v): the test proves nothing", err)
	}
	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := leaseStates(t, s); len(got) != 1 || got[0] != "10.0.0.1 02:00:00:00:00:0b bound" {
		t.Fatalf("leases after a restart: %v, want the newer row", got)
	}
}

// A whole record that is not a lease was written by something else: Open
// says which file and how to go on, and the database is left as it was.
func TestLeaseJournalThatIsNotOursIsRefused(t *testing.T) {
	path := newDatabase(t)
	data, err := appendJournalRecord(nil, 1, journalRecord{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+LeaseJournalSuffix, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), path, Options{})
	if err == nil || !strings.Contains(err.Error(), path+LeaseJournalSuffix) || !strings.Contains(err.Error(), "move it aside") {
		t.Fatalf("got %v, want the journal named and what to do", err)
	}
}

// Two processes on one database would overwrite each other's leases.
func TestSecondOpenOfADatabaseIsRefused(t *testing.T) {
	path := newDatabase(t)
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(context.Background(), path, Options{}); err == nil || !strings.Contains(err.Error(), "another Slipway uses this database") {
		t.Fatalf("a second Open: %v", err)
	}
}

// Writers waiting at once share fdatasyncs; each returns with its lease
// durable, and the table ends with every one of them.
func TestConcurrentJournaledLeases(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	var wg sync.WaitGroup
	var mu sync.Mutex // journals in one order, as the lease book's lock does
	errs := make(chan error, 400)
	for i := range 400 {
		wg.Go(func() {
			mu.Lock()
			ticket, err := s.JournalLease(bound(fmt.Sprintf("10.0.%d.%d", i/200, i%200+1), fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&255)))
			mu.Unlock()
			if err == nil {
				err = s.LeaseDurable(ctx, ticket)
			}
			if err == nil && s.journal.durableUpTo() < uint64(ticket) {
				err = fmt.Errorf("lease %d returned before it was durable", ticket)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := leaseStates(t, s); len(got) != 400 {
		t.Fatalf("%d leases stored, want 400", len(got))
	}
}

// durableUpTo is the last record on disk.
func (j *leaseJournal) durableUpTo() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.durable
}

const journalWriterEnv = "SLIPWAY_STORE_JOURNAL_WRITER"

// TestJournaledLeasesSurviveKill9 runs a child that journals leases and
// reports each once LeaseDurable returned, then kills it with SIGKILL:
// every reported lease must be in the table when the database opens again,
// most of them never applied by the child.
func TestJournaledLeasesSurviveKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slipway.db")
	reported := map[string]string{}
	killChildWhen(t, "TestJournalWriterChild", journalWriterEnv+"="+path, func(line string) bool {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "durable" {
			reported[f[1]] = f[2]
		}
		return len(reported) >= 2000
	})
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("database does not open after kill -9: %v", err)
	}
	defer s.Close()
	for ip, mac := range reported {
		l, err := s.Lease(context.Background(), ip)
		if err != nil || l.MAC != mac {
			t.Fatalf("lease %s of %s was reported durable; after kill -9: %+v, %v", ip, mac, l, err)
		}
	}
}

// TestJournalWriterChild is the child of TestJournaledLeasesSurviveKill9.
func TestJournalWriterChild(t *testing.T) {
	path := os.Getenv(journalWriterEnv)
	if path == "" {
		t.Skip("runs only as the child of TestJournaledLeasesSurviveKill9")
	}
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		ip, mac := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&255, i>>8&255, i&255)
		ticket, err := s.JournalLease(bound(ip, mac))
		if err == nil {
			err = s.LeaseDurable(context.Background(), ticket)
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(os.Stdout, "durable %s %s\n", ip, mac)
	}
}

// FuzzParseLeaseJournal: whatever a journal file holds, replay neither
// panics nor returns records out of order or past the end.
func FuzzParseLeaseJournal(f *testing.F) {
	one, _ := appendJournalRecord(nil, 4, journalRecord{IP: "10.0.0.1", MAC: "02:00:00:00:00:01", State: "bound"})
	two, _ := appendJournalRecord(one, 5, journalRecord{IP: "10.0.0.2", MAC: "02:00:00:00:00:02", State: "released"})
	f.Add(two)
	f.Add(append(two, 0, 0, 0, 0))
	f.Add(two[:len(two)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		records, end, err := parseLeaseJournal(data)
		if err != nil {
			if records != nil {
				t.Fatal("records returned with an error")
			}
			return
		}
		if end < 0 || end > int64(len(data)) {
			t.Fatalf("end %d outside %d bytes", end, len(data))
		}
		for i := 1; i < len(records); i++ {
			if records[i].seq != records[i-1].seq+1 {
				t.Fatalf("records %d and %d do not follow each other", records[i-1].seq, records[i].seq)
			}
		}
		for _, r := range records {
			if r.record.IP == "" || r.record.MAC == "" || r.record.State == "" {
				t.Fatalf("a record without a lease: %+v", r.record)
			}
		}
	})
}
