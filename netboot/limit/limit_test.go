package limit

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	r := NewRate[string](0.001, 3, 100) // a token every 1000 s: none come back during the test
	for i := range 3 {
		if !r.Allow("a") {
			t.Fatalf("request %d of a burst of 3 refused", i+1)
		}
	}
	if r.Allow("a") {
		t.Fatal("a fourth request within the burst was allowed")
	}
	if !r.Allow("b") {
		t.Fatal("another client paid for the first one's burst")
	}
	// A flood of forged clients: the table stays bounded, and a client
	// seen before and busy is not forgotten while idle ones can go.
	for i := range 10_000 {
		r.Allow(fmt.Sprintf("forged-%d", i))
		if n := r.Clients(); n > 100 {
			t.Fatalf("%d clients remembered, bound 100", n)
		}
	}
	if _, kept := r.clients["forged-0"]; kept {
		t.Fatal("nothing was forgotten past the bound")
	}
	var unlimited *Rate[string]
	if !unlimited.Allow("x") || !NewRate[string](0, 1, 1).Allow("x") {
		t.Fatal("no limit must allow everything")
	}
}

// Idle clients (full buckets) are forgotten first: nothing they did is
// lost by it.
func TestRateForgetsIdleClientsFirst(t *testing.T) {
	r := NewRate[int](0.001, 2, 3)
	r.Allow(1) // busy: a token spent
	r.Allow(2)
	r.clients[3] = r.newLimiter() // seen, and idle: its bucket is full
	r.Allow(4)
	if _, ok := r.clients[3]; ok {
		t.Fatal("the idle client was kept")
	}
	for _, busy := range []int{1, 2, 4} {
		if _, ok := r.clients[busy]; !ok {
			t.Fatalf("busy client %d was forgotten while an idle one could go", busy)
		}
	}
}

func TestConcurrent(t *testing.T) {
	c := NewConcurrent[string](2)
	r1, ok1 := c.Acquire("a")
	_, ok2 := c.Acquire("a")
	_, ok3 := c.Acquire("a")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("acquired %v %v %v, want the first two", ok1, ok2, ok3)
	}
	if _, ok := c.Acquire("b"); !ok {
		t.Fatal("another client was refused")
	}
	r1()
	r1() // twice is once
	if _, ok := c.Acquire("a"); !ok {
		t.Fatal("a released place was not given back")
	}
	if _, ok := c.Acquire("a"); ok {
		t.Fatal("releasing twice gave two places back")
	}
}

// Past the bound, requests wait and get their turns in order of arrival; a
// repeat of a waiting request, or one past the waiting room, is refused at
// once, and a wait that finds no room ends.
func TestTurns(t *testing.T) {
	ctx := context.Background()
	turns := NewTurns[string](2, 2, time.Hour)
	first, _ := turns.Take(ctx, "a", time.Second)
	second, _ := turns.Take(ctx, "b", time.Second)
	got := make(chan string, 2)
	for _, client := range []string{"c", "d"} {
		go func() {
			if release, err := turns.Take(ctx, client, time.Minute); err == nil {
				got <- client
				release()
			}
		}()
		for turns.Waiting() == 0 || (client == "d" && turns.Waiting() < 2) {
			time.Sleep(time.Millisecond)
		}
	}
	if _, err := turns.Take(ctx, "c", time.Minute); !errors.Is(err, ErrRepeated) {
		t.Fatalf("a repeat of a waiting request: %v, want ErrRepeated", err)
	}
	if _, err := turns.Take(ctx, "e", time.Minute); !errors.Is(err, ErrNoTurn) {
		t.Fatalf("past the waiting room: %v, want ErrNoTurn", err)
	}
	first()
	first() // twice is once
	if c := <-got; c != "c" {
		t.Fatalf("%s got the first free turn, want c (it came first)", c)
	}
	if c := <-got; c != "d" {
		t.Fatalf("%s got the next turn, want d", c)
	}
	second()
	third, _ := turns.Take(ctx, "f", time.Second)
	fourth, _ := turns.Take(ctx, "g", time.Second)
	if _, err := turns.Take(ctx, "h", 10*time.Millisecond); !errors.Is(err, ErrNoTurn) {
		t.Fatalf("no room within the wait: %v, want ErrNoTurn", err)
	}
	// A request its client keeps repeating waits for as long as it does.
	waited := make(chan error, 1)
	go func() {
		release, err := turns.Take(ctx, "i", 150*time.Millisecond)
		if err == nil {
			release()
		}
		waited <- err
	}()
	for range 6 {
		time.Sleep(50 * time.Millisecond)
		if _, err := turns.Take(ctx, "i", time.Minute); !errors.Is(err, ErrRepeated) {
			t.Fatalf("a repeat: %v", err)
		}
	}
	third()
	if err := <-waited; err != nil {
		t.Fatalf("a request repeated for 300 ms, twice its wait, gave up: %v", err)
	}
	fourth()
	if release, err := NewTurns[string](0, 0, 0).Take(ctx, "a", 0); err != nil || release == nil {
		t.Fatalf("no bound: %v", err)
	}
}

// A turn goes to the first waiting request whose client asked lately: one
// silent past fresh may have given up, and keeps its place until it asks
// again, which gives it a free turn.
func TestTurnsGoToClientsStillAsking(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	turns := NewTurns[string](1, 10, 3*time.Second)
	turns.now = func() time.Time { return now }
	release, _ := turns.Take(ctx, "busy", time.Minute)
	got := make(chan string, 2)
	wait := func(client string) {
		go func() {
			if r, err := turns.Take(ctx, client, time.Minute); err == nil {
				got <- client
				<-time.After(10 * time.Millisecond)
				r()
			}
		}()
	}
	wait("old")
	for turns.Waiting() < 1 {
		time.Sleep(time.Millisecond)
	}
	now = now.Add(5 * time.Second) // old has not asked for 5 s
	wait("new")
	for turns.Waiting() < 2 {
		time.Sleep(time.Millisecond)
	}
	release()
	if c := <-got; c != "new" {
		t.Fatalf("the turn went to %s, want new: old was silent past fresh", c)
	}
	if _, err := turns.Take(ctx, "old", time.Minute); !errors.Is(err, ErrRepeated) {
		t.Fatalf("old asking again: %v, want ErrRepeated", err)
	}
	if c := <-got; c != "old" {
		t.Fatalf("the turn went to %s, want old (it asked again)", c)
	}
}
