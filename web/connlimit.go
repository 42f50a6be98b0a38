package web

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// perAddressListener bounds the connections open at once from one client
// address: a host on the LAN holding connections open must not starve the
// others. Past the bound a connection is answered 429 and closed.
// (fasthttp's own MaxConnsPerIP panicked in perIPConn.Close when the
// server shut down, in our tests.)
type perAddressListener struct {
	net.Listener
	max  int
	mu   sync.Mutex
	open map[netip.Addr]int // only addresses with connections open
}

func limitPerAddress(ln net.Listener, max int) net.Listener {
	return &perAddressListener{Listener: ln, max: max, open: map[netip.Addr]int{}}
}

// Accept returns the next connection within its address's bound.
func (l *perAddressListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteAddr(c)
		l.mu.Lock()
		if l.open[addr] >= l.max {
			l.mu.Unlock()
			go refuseBusy(c)
			continue
		}
		l.open[addr]++
		l.mu.Unlock()
		return &addressConn{Conn: c, release: func() { l.release(addr) }}, nil
	}
}

func (l *perAddressListener) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[addr]--; l.open[addr] <= 0 {
		delete(l.open, addr)
	}
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
type addressConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// ReadFrom lets a file reach the socket by sendfile: without it, the
// wrapper hides the TCP connection's own ReadFrom and every kernel and
// initrd is copied through user space (half nginx's rate, measured).
func (c *addressConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

func (c *addressConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
