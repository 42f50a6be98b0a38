package store

import (
	"context"
	"errors"
	"fmt"
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
