package limit

import (
	"container/list"
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
// the bound waits for its turn, in order of arrival, for as long as its
// client keeps asking: a client that repeats a request still waiting (UDP
// clients do, on their timeout) is told so instead of being queued twice,
// and its request waits on. A turn goes to the first request whose client
// was heard from lately: a client asks again each time its timeout runs
// out, and gives up after its last try, so one silent for longer than its
// timeout may have gone, and the transfer would wait out its own timeouts
// for nobody. Serving a few thousand boot loaders one after the other
// lets each finish in a second or two; serving them all at once finishes
// none for minutes, and their timeouts multiply the traffic.
type Turns[K comparable] struct {
	max, maxWaiting int
	// fresh is how lately a client must have asked for its request to get
	// a turn.
	fresh   time.Duration
	now     func() time.Time
	mu      sync.Mutex
	busy    int
	queue   list.List // of *waiter[K], first come first
	waiting map[K]*waiter[K]
}

type waiter[K comparable] struct {
	client  K
	heard   time.Time     // the client's last request
	granted chan struct{} // closed when the turn is its
	repeat  chan struct{} // signalled when the client asks again
	place   *list.Element
}

// ErrRepeated is a request from a client whose earlier request still waits.
var ErrRepeated = errors.New("this client's earlier request is still waiting for its turn")

// ErrNoTurn is a request that found no room within its wait.
var ErrNoTurn = errors.New("no room within the wait")

// NewTurns lets n things happen at once, with at most maxWaiting requests
// waiting; a turn goes to a request whose client asked within fresh. n 0
// means no bound.
func NewTurns[K comparable](n, maxWaiting int, fresh time.Duration) *Turns[K] {
	return &Turns[K]{max: n, maxWaiting: maxWaiting, fresh: fresh, now: time.Now, waiting: map[K]*waiter[K]{}}
}

// Take waits for a turn for client's request; release ends the turn. A
// request its client has not repeated for wait, or whose ctx ends, gives
// up waiting.
func (t *Turns[K]) Take(ctx context.Context, client K, wait time.Duration) (release func(), err error) {
	if t.max <= 0 {
		return func() {}, nil
	}
	w, err := t.enqueue(client)
	if err != nil {
		return nil, err
	}
	if w == nil {
		return t.releaser(), nil // a free turn
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-w.granted:
			return t.releaser(), nil
		case <-w.repeat:
			timer.Reset(wait)
			continue
		case <-timer.C:
			err = ErrNoTurn
		case <-ctx.Done():
			err = ctx.Err()
		}
		if t.leave(w) {
			return nil, err
		}
		return t.releaser(), nil // granted as it gave up
	}
}

// Waiting is how many requests wait for a turn.
func (t *Turns[K]) Waiting() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.queue.Len()
}

// enqueue takes a free turn (w nil) or queues client's request. A repeat
// of a waiting request freshens it, and gives it a free turn if there is
// one: the turn goes to the request that waits, not to its copy.
func (t *Turns[K]) enqueue(client K) (w *waiter[K], err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w, ok := t.waiting[client]; ok {
		w.heard = t.now()
		select {
		case w.repeat <- struct{}{}:
		default:
		}
		if t.busy < t.max {
			t.busy++
			t.grant(w)
		}
		return nil, ErrRepeated
	}
	if t.busy < t.max {
		t.busy++
		return nil, nil
	}
	if t.queue.Len() >= t.maxWaiting {
		return nil, ErrNoTurn
	}
	w = &waiter[K]{client: client, heard: t.now(), granted: make(chan struct{}), repeat: make(chan struct{}, 1)}
	w.place = t.queue.PushBack(w)
	t.waiting[client] = w
	return w, nil
}

// leave takes w out of the queue; false if its turn came meanwhile.
func (t *Turns[K]) leave(w *waiter[K]) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w.place == nil {
		return false
	}
	t.queue.Remove(w.place)
	delete(t.waiting, w.client)
	return true
}

// grant gives w the turn it has been counted in busy for.
func (t *Turns[K]) grant(w *waiter[K]) {
	t.queue.Remove(w.place)
	w.place = nil
	delete(t.waiting, w.client)
	close(w.granted)
}

// releaser ends a turn: it goes to the first waiting request whose client
// asked lately; if none has, the turn stays free for the next to ask.
func (t *Turns[K]) releaser() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			now := t.now()
			for el := t.queue.Front(); el != nil; el = el.Next() {
				if w := el.Value.(*waiter[K]); now.Sub(w.heard) <= t.fresh {
					t.grant(w)
					return
				}
			}
			t.busy--
		})
	}
}
