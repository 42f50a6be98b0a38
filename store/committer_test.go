package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestCommitterIsolatesFailuresInABatch(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	c := s.NewCommitter(64)
	defer c.Close()
	create(t, s, created("taken", "52:54:00:00:00:01"))

	var wg sync.WaitGroup
	errs := make([]error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Do(ctx, func(tx *Tx) error {
				mac := fmt.Sprintf("02:00:00:00:00:%02x", i)
				if i%10 == 0 {
					mac = "52:54:00:00:00:01" // belongs to "taken": this write must fail alone
				}
				_, err := tx.CreateMachine(created(fmt.Sprintf("m%03d", i), mac), "batch")
				return err
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%10 == 0 {
			if !errors.Is(err, ErrConflict) {
				t.Errorf("write %d: want ErrConflict, got %v", i, err)
			}
			if _, err := s.Machine(ctx, fmt.Sprintf("m%03d", i)); !errors.Is(err, ErrNotFound) {
				t.Errorf("failed write %d left its machine row behind", i)
			}
			continue
		}
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	counts, _ := s.CountMachinesByState(ctx)
	if counts["created"] != 1+90 {
		t.Fatalf("%d machines, want 91", counts["created"])
	}
}

func TestCommitterAfterClose(t *testing.T) {
	s := openTest(t)
	c := s.NewCommitter(8)
	c.Close()
	if err := c.Do(context.Background(), func(*Tx) error { return nil }); !errors.Is(err, ErrCommitterClosed) {
		t.Fatalf("got %v", err)
	}
}

// BenchmarkLeaseWrites compares one transaction per lease with group commit
// from 64 concurrent writers, on a real file with synchronous=FULL.
func BenchmarkLeaseWrites(b *testing.B) {
	for _, mode := range []string{"one-transaction-each", "group-commit"} {
		b.Run(mode, func(b *testing.B) {
			s := openTest(b)
			c := s.NewCommitter(256)
			defer c.Close()
			b.SetParallelism(32)
			var n int64
			var mu sync.Mutex
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					mu.Lock()
					n++
					ip := fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255)
					mu.Unlock()
					write := func(tx *Tx) error { return tx.PutLease(Lease{IP: ip, MAC: "02:00:00:00:00:01", State: "bound"}) }
					var err error
					if mode == "group-commit" {
						err = c.Do(context.Background(), write)
					} else {
						err = s.Update(context.Background(), write)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// A write that fails on the storage's condition says so (a full disk, a
// read-only one), so that callers tell the operator what to fix; the
// committer goes on, and nothing committed before is lost.
func TestCommitterNamesTheStoragesCondition(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	c := s.NewCommitter(8)
	defer c.Close()
	create(t, s, created("kept", "52:54:00:00:00:01"))
	// The pragmas below hold for the connection they run on: the writer's.
	var pages int
	if err := s.writer.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	// A database that may not grow is a disk that is full.
	if _, err := s.writer.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+1)); err != nil {
		t.Fatal(err)
	}
	var err error
	for i := 0; err == nil && i < 1000; i++ {
		err = c.Do(ctx, func(tx *Tx) error {
			_, err := tx.AddStageEvent(StageEvent{MAC: "52:54:00:00:00:01", Stage: "install", Phase: "running", Detail: strings.Repeat("x", 4000)})
			return err
		})
	}
	if !errors.Is(err, ErrStorageFull) || !strings.Contains(err.Error(), "free space there") {
		t.Fatalf("a write on a full disk: %v", err)
	}
	if _, err := s.writer.ExecContext(ctx, `PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.writer.ExecContext(ctx, `PRAGMA query_only = 1`); err != nil {
		t.Fatal(err)
	}
	err = c.Do(ctx, func(tx *Tx) error {
		_, err := tx.CreateMachine(created("new", "52:54:00:00:00:02"), "test")
		return err
	})
	if !errors.Is(err, ErrStorageReadOnly) {
		t.Fatalf("a write on a read-only store: %v", err)
	}
	if _, err := s.writer.ExecContext(ctx, `PRAGMA query_only = 0`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MachineByMAC(ctx, "52:54:00:00:00:01"); err != nil {
		t.Fatalf("what was committed before: %v", err)
	}
	if err := c.Do(ctx, func(tx *Tx) error {
		_, err := tx.CreateMachine(created("after", "52:54:00:00:00:03"), "test")
		return err
	}); err != nil {
		t.Fatalf("a write once the condition is gone: %v", err)
	}
}

// BenchmarkLoneLeaseWrite is one lease written at a time, as at a steady
// DHCP rate, with and without an fsync: a commit of its own through the
// committer, or a record of the lease journal (what the DHCP server does).
func BenchmarkLoneLeaseWrite(b *testing.B) {
	ways := []struct {
		name  string
		write func(s *Store, c *Committer, l Lease) error
	}{
		{"commit", func(_ *Store, c *Committer, l Lease) error {
			return c.Do(context.Background(), func(tx *Tx) error { return tx.PutLease(l) })
		}},
		{"journal", func(s *Store, _ *Committer, l Lease) error {
			t, err := s.JournalLease(l)
			if err != nil {
				return err
			}
			return s.LeaseDurable(context.Background(), t)
		}},
	}
	for _, way := range ways {
		for _, sync := range []string{SyncFull, SyncNormal} {
			b.Run(way.name+"/"+sync, func(b *testing.B) {
				s, err := Open(context.Background(), filepath.Join(b.TempDir(), "slipway.db"), Options{Sync: sync})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				c := s.NewCommitter(256)
				defer c.Close()
				for i := range b.N {
					ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
					if err := way.write(s, c, Lease{IP: ip, MAC: "02:00:00:00:00:01", State: "bound"}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// An urgent write (DHCP's) goes into the next batch, ahead of the ordinary
// writes queued before it (a site's heartbeats).
func TestUrgentWritesGoFirst(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	c := s.NewCommitter(8)
	defer c.Close()
	var order []string // appended by the writer goroutine only
	busy, release := make(chan struct{}), make(chan struct{})
	write := func(name string) func(*Tx) error {
		return func(*Tx) error { order = append(order, name); return nil }
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		c.Do(ctx, func(tx *Tx) error { close(busy); <-release; return write("blocker")(tx) })
	})
	<-busy
	for i := range 20 {
		wg.Go(func() { c.Do(ctx, write(fmt.Sprintf("ordinary %d", i))) })
	}
	for len(c.ops) < cap(c.ops) {
		runtime.Gosched()
	}
	wg.Go(func() { c.DoUrgent(ctx, write("urgent")) })
	for len(c.urgent) == 0 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if len(order) != 22 || order[0] != "blocker" || order[1] != "urgent" {
		t.Fatalf("commit order %v: want the urgent write right after the one under way", order)
	}
}
