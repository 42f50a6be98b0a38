package limit

import (
	"fmt"
	"testing"
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
