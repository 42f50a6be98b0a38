package web

import (
	"io"
	"syscall"
)

// FileFollows says the answer about to be written is a file sent by
// ReadFrom: its header waits in the corked socket and leaves with the
// file's first bytes, one segment where there were two (fasthttp flushes
// the header before the body, and Go's sockets do not delay small
// writes). Whatever the answer turns out to be, the socket is uncorked
// when it ends: by the file's last bytes, by the next write of another
// answer, or before the next request is read.
func (c *addressConn) FileFollows() { c.fileFollows = true }

func (c *addressConn) Write(p []byte) (int, error) {
	if c.fileFollows && !c.corked {
		c.corked = setCork(c.Conn, true)
	}
	n, err := c.Conn.Write(p)
	if c.corked && !c.fileFollows {
		c.uncork() // an answer other than the file's
	}
	return n, err
}

func (c *addressConn) Read(p []byte) (int, error) {
	if c.corked {
		c.uncork() // the answer is over (a 304, a 416, a HEAD): out it goes
	}
	if c.fileFollows {
		// Written only when set: a TLS connection over this one may read
		// and write at once, and never sets it.
		c.fileFollows = false
	}
	return c.Conn.Read(p)
}

func (c *addressConn) uncork() {
	setCork(c.Conn, false)
	c.corked = false
}

// ReadFrom lets a file reach the socket by sendfile: without it, the
// wrapper hides the TCP connection's own ReadFrom and every kernel and
// initrd is copied through user space (half nginx's rate, measured). The
// socket is corked while the file goes out (as nginx's tcp_nopush does),
// so that each copy's tail waits to fill a segment instead of leaving as
// a small one, and uncorked after: what is left goes out then.
func (c *addressConn) ReadFrom(r io.Reader) (int64, error) {
	if !c.corked {
		c.corked = setCork(c.Conn, true)
	}
	defer func() {
		if c.corked {
			c.uncork()
		}
		c.fileFollows = false
	}()
	if sc, ok := c.Conn.(syscall.Conn); ok {
		if n, handled, err := sendFile(sc, r); handled {
			return n, err
		}
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}
