package limit

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate lets each client ask perSecond times a second, burst at once. It
// remembers at most maxClients; past that it forgets the idle ones (their
// buckets full), and if none are idle, all of them.
type Rate[K comparable] struct {
	limit      rate.Limit
	burst      int
	maxClients int

	mu      sync.Mutex
	clients map[K]*rate.Limiter
}

// NewRate returns a per-client rate; perSecond 0 means no limit.
func NewRate[K comparable](perSecond float64, burst, maxClients int) *Rate[K] {
	return &Rate[K]{limit: rate.Limit(perSecond), burst: max(burst, 1), maxClients: max(maxClients, 1), clients: map[K]*rate.Limiter{}}
}

// Allow says whether client may be answered now, and spends a token if so.
func (r *Rate[K]) Allow(client K) bool {
	if r == nil || r.limit == 0 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.clients[client]
	if !ok {
		if len(r.clients) >= r.maxClients {
			r.forget()
		}
		l = r.newLimiter()
		r.clients[client] = l
	}
	return l.Allow()
}

func (r *Rate[K]) newLimiter() *rate.Limiter { return rate.NewLimiter(r.limit, r.burst) }

// forget makes room: the clients whose buckets refilled are as good as
// new, so dropping them changes nothing; if every client is busy, the
// table starts over. r.mu is held.
func (r *Rate[K]) forget() {
	for k, l := range r.clients {
		if l.Tokens() >= float64(r.burst) {
			delete(r.clients, k)
		}
	}
	if len(r.clients) >= r.maxClients {
		clear(r.clients)
	}
}

// Clients is how many clients it remembers now.
func (r *Rate[K]) Clients() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.clients)
}

// Concurrent lets each client have at most perClient things at once.
type Concurrent[K comparable] struct {
	perClient int
	mu        sync.Mutex
	open      map[K]int
}

// NewConcurrent returns a per-client bound; 0 means none.
func NewConcurrent[K comparable](perClient int) *Concurrent[K] {
	return &Concurrent[K]{perClient: perClient, open: map[K]int{}}
}

// Acquire takes one of client's places, if it has one left; release gives
// it back. The table holds only clients with something open, so it is
// bounded by what is open.
func (c *Concurrent[K]) Acquire(client K) (release func(), ok bool) {
	if c == nil || c.perClient == 0 {
		return func() {}, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[client] >= c.perClient {
		return nil, false
	}
	c.open[client]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.open[client]--; c.open[client] <= 0 {
				delete(c.open, client)
			}
		})
	}, true
}

// Turns bounds things at once over all clients together. A request past
// the bound waits for its turn, in order of arrival, up to a time; a
// client that repeats a request still waiting (UDP clients do, on their
// timeout) is told so instead of being queued twice. Serving a few
// thousand boot loaders one after the other lets each finish in a second
// or two; serving them all at once finishes none for minutes, and their
// timeouts multiply the traffic.
type Turns[K comparable] struct {
	free       chan struct{}
	maxWaiting int
	mu         sync.Mutex
	waiting    map[K]struct{}
}

// ErrRepeated is a request from a client whose earlier request still waits.
var ErrRepeated = errors.New("this client's earlier request is still waiting for its turn")

// ErrNoTurn is a request that found no room within its wait.
var ErrNoTurn = errors.New("no room within the wait")

// NewTurns lets n things happen at once, with at most maxWaiting requests
// waiting; n 0 means no bound.
func NewTurns[K comparable](n, maxWaiting int) *Turns[K] {
	t := &Turns[K]{maxWaiting: maxWaiting, waiting: map[K]struct{}{}}
	if n > 0 {
		t.free = make(chan struct{}, n)
	}
	return t
}

// Take waits up to wait for a turn for client's request; release ends the
// turn. ctx ending gives up waiting.
func (t *Turns[K]) Take(ctx context.Context, client K, wait time.Duration) (release func(), err error) {
	if t.free == nil {
		return func() {}, nil
	}
	select {
	case t.free <- struct{}{}:
		return t.releaser(), nil
	default:
	}
	if err := t.queue(client); err != nil {
		return nil, err
	}
	defer t.dequeue(client)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case t.free <- struct{}{}:
		return t.releaser(), nil
	case <-timer.C:
		return nil, ErrNoTurn
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Waiting is how many requests wait for a turn.
func (t *Turns[K]) Waiting() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.waiting)
}

func (t *Turns[K]) queue(client K) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.waiting[client]; ok {
		return ErrRepeated
	}
	if len(t.waiting) >= t.maxWaiting {
		return ErrNoTurn
	}
	t.waiting[client] = struct{}{}
	return nil
}

func (t *Turns[K]) dequeue(client K) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.waiting, client)
}

func (t *Turns[K]) releaser() func() {
	var once sync.Once
	return func() { once.Do(func() { <-t.free }) }
}
