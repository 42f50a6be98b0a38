package broker

import (
	"net"
	"sync"
	"time"
)

// Limits bound what a client on the LAN can make the broker hold, before
// it has logged in as after: any host there may be compromised.
type Limits struct {
	// MaxPacketBytes is the largest packet read, CONNECT included: the
	// reader allocates what a packet's header claims, so without it one
	// unauthenticated CONNECT claiming 256 MiB costs 256 MiB. 0: 1 MiB.
	MaxPacketBytes uint32
	// MaxConnections is how many connections are open at once, logged in
	// or not; more are closed as they arrive. 0: 1024.
	MaxConnections int
	// ConnectTimeout is how long a connection may take to send its
	// CONNECT. 0: 10 s.
	ConnectTimeout time.Duration
	// MaxQueuedPerClient is how many messages may wait for a slow
	// subscriber before the broker drops the ones past it. 0: 16384 (a
	// slot is a pointer: the queue costs memory only when it fills).
	MaxQueuedPerClient int32
}

func (l Limits) withDefaults() Limits {
	if l.MaxPacketBytes == 0 {
		l.MaxPacketBytes = 1 << 20
	}
	if l.MaxConnections <= 0 {
		l.MaxConnections = 1024
	}
	if l.ConnectTimeout <= 0 {
		l.ConnectTimeout = 10 * time.Second
	}
	if l.MaxQueuedPerClient <= 0 {
		l.MaxQueuedPerClient = 16384
	}
	return l
}

// connectionLimit is one cap on open connections, shared by every listener
// of the broker (a flood on either counts), and the deadline each new
// connection has for its CONNECT (the broker replaces it with the client's
// keepalive once it has read the CONNECT): mochi counts its clients only
// after their CONNECT, so connections that never send one would otherwise
// be held without end.
type connectionLimit struct {
	slots          chan struct{}
	connectTimeout time.Duration
	refused        func() // told of each connection closed at the limit
}

func newConnectionLimit(l Limits, refused func()) *connectionLimit {
	return &connectionLimit{slots: make(chan struct{}, l.MaxConnections), connectTimeout: l.ConnectTimeout, refused: refused}
}

// open is how many connections hold a place now.
func (cl *connectionLimit) open() int { return len(cl.slots) }

// with is ln under the limit.
func (cl *connectionLimit) with(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, limit: cl}
}

type limitedListener struct {
	net.Listener
	limit *connectionLimit
}

// Accept returns the next connection within the limit.
func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.limit.slots <- struct{}{}:
		default:
			// Counted before the close, so that the count is never behind
			// what the refused client sees (a test read it as 0 once).
			l.limit.refused()
			c.Close()
			continue
		}
		_ = c.SetDeadline(time.Now().Add(l.limit.connectTimeout))
		return &slotConn{Conn: c, release: l.limit.release}, nil
	}
}

func (cl *connectionLimit) release() { <-cl.slots }

// slotConn gives its slot back once, on the first Close.
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
