package auth

import (
	"sync"
	"time"
)

// limiter slows down password guessing per key (a client address, or an
// account): after its free failures, each further one blocks the key for
// twice as long as the last, from 30 s up to 15 min; a success or 15 quiet
// minutes forgive. It holds at most maxClients keys.
type limiter struct {
	now     func() time.Time
	free    int // failures before the first block
	mu      sync.Mutex
	clients map[string]*attempts
}

type attempts struct {
	failures int
	last     time.Time
	until    time.Time
}

const (
	freeFailures = 5 // per address
	// accountFreeFailures are an account's failures, from any addresses,
	// before its logins are slowed: more than one address's, so that a
	// guesser spread over many addresses is slowed without a typo from
	// one operator locking the account.
	accountFreeFailures = 20
	firstBlock          = 30 * time.Second
	longestBlock        = 15 * time.Minute
	forgiveAfter        = 15 * time.Minute
	maxClients          = 10000
)

func newLimiter(now func() time.Time, free int) *limiter {
	return &limiter{now: now, free: free, clients: map[string]*attempts{}}
}

// blocked says how long client must wait before trying again.
func (l *limiter) blocked(client string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.clients[client]
	if !ok {
		return 0
	}
	return max(0, a.until.Sub(l.now()))
}

// failed counts a failure and returns how long client is now blocked.
func (l *limiter) failed(client string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	a, ok := l.clients[client]
	if !ok || now.Sub(a.last) > forgiveAfter {
		if len(l.clients) >= maxClients {
			l.forget(now)
		}
		a = &attempts{}
		l.clients[client] = a
	}
	a.failures++
	a.last = now
	if a.failures <= l.free {
		return 0
	}
	block := firstBlock
	for i := l.free + 1; i < a.failures && block < longestBlock; i++ {
		block *= 2
	}
	block = min(block, longestBlock)
	a.until = now.Add(block)
	return block
}

func (l *limiter) succeeded(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.clients, client)
}

// forget drops forgiven clients, or, in a flood of addresses, all of them
// (a flood's guesses are still slowed by bcrypt).
func (l *limiter) forget(now time.Time) {
	for c, a := range l.clients {
		if now.Sub(a.last) > forgiveAfter {
			delete(l.clients, c)
		}
	}
	if len(l.clients) >= maxClients {
		clear(l.clients)
	}
}
