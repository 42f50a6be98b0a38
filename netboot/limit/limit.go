package limit

import (
	"sync"

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
