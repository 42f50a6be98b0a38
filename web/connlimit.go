package web

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/slipway/slipway/appliance/listener"
)

// boundedListener bounds the connections open at once: from one
// client address (a host on the LAN holding connections open must not
// starve the others; past that bound a connection is answered 429 and
// closed), and in all, across the HTTP and HTTPS listeners (past that one
// the next connection waits in the kernel's queue until another closes:
// fasthttp's own bound answers 503 without Retry-After, which ends an
// iPXE boot). (fasthttp's own MaxConnsPerIP panicked in perIPConn.Close
// when the server shut down, in our tests.)
type boundedListener struct {
	net.Listener
	max   int
	slots *connectionSlots
	mu    sync.Mutex
	open  map[netip.Addr]int // only addresses with connections open
}

// connectionSlots are the places for connections open at once, shared by
// the listeners of one server.
type connectionSlots struct {
	free   chan struct{}
	closed chan struct{}
	once   sync.Once
	log    *slog.Logger
	full   listener.Throttle // says the bound was reached once a minute
}

func newConnectionSlots(n int, log *slog.Logger) *connectionSlots {
	return &connectionSlots{free: make(chan struct{}, n), closed: make(chan struct{}), log: log, full: listener.Throttle{Every: time.Minute}}
}

// take waits for a place; false once the slots are closed (the server
// is stopping).
func (s *connectionSlots) take() bool {
	select {
	case s.free <- struct{}{}:
		return true
	default:
	}
	s.warnFull()
	select {
	case s.free <- struct{}{}:
		return true
	case <-s.closed:
		return false
	}
}

// warnFull says, once a minute at most, that connections wait.
func (s *connectionSlots) warnFull() {
	if warn, _ := s.full.Note(time.Now()); !warn {
		return
	}
	s.log.Warn("HTTP connections wait to be accepted: http.max_connections are open", "max_connections", cap(s.free),
		"fix", "raise http.max_connections if memory allows; idle connections close after "+idleTimeout.String())
}

func (s *connectionSlots) give() { <-s.free }

func (s *connectionSlots) close() { s.once.Do(func() { close(s.closed) }) }

func boundConnections(ln net.Listener, max int, slots *connectionSlots) net.Listener {
	return &boundedListener{Listener: ln, max: max, slots: slots, open: map[netip.Addr]int{}}
}

// Accept returns the next connection within both bounds.
func (l *boundedListener) Accept() (net.Conn, error) {
	for {
		if !l.slots.take() {
			return nil, net.ErrClosed
		}
		c, err := l.Listener.Accept()
		if err != nil {
			l.slots.give()
			return nil, err
		}
		addr := remoteAddr(c)
		l.mu.Lock()
		if l.open[addr] >= l.max {
			l.mu.Unlock()
			go func() {
				refuseBusy(c)
				l.slots.give()
			}()
			continue
		}
		l.open[addr]++
		l.mu.Unlock()
		return &addressConn{Conn: c, release: func() { l.release(addr) }}, nil
	}
}

// Close stops Accept, also while it waits for a place.
func (l *boundedListener) Close() error {
	l.slots.close()
	return l.Listener.Close()
}

func (l *boundedListener) release(addr netip.Addr) {
	l.mu.Lock()
	if l.open[addr]--; l.open[addr] <= 0 {
		delete(l.open, addr)
	}
	l.mu.Unlock()
	l.slots.give()
}

// tooManyConnections is the whole answer to a connection past the bound.
const tooManyConnections = "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 74\r\n\r\n" +
	"too many connections from this address (http.max_connections_per_address)\n"

// refuseBusy answers 429 without reading the request, and closes.
func refuseBusy(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write([]byte(tooManyConnections))
	c.Close()
}

func remoteAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// addressConn gives its address's place back once, on the first Close.
// It also sends files by sendfile, a file answer's header in the file's
// first segment (fileanswer.go). A connection is used by one goroutine at
// a time, as fasthttp serves it, so its fields need no lock.
type addressConn struct {
	net.Conn
	once    sync.Once
	release func()
	// fileFollows: the answer being written is a file's (FileFollows);
	// corked: the socket is corked since its header went in.
	fileFollows, corked bool
}

func (c *addressConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
