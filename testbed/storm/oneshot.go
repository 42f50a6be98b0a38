package storm

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"time"
)

// oneShot carries one request per connection, as the installer's curl
// does: connect, send, read the answer, close. net/http's Transport keeps
// a pool, two goroutines and their channels for every connection; for a
// storm's 160,000 one-request connections (cloud-init and heartbeats) they
// cost the simulated machines CPU that the server's two cores share.
type oneShot struct {
	dialer *net.Dialer
	// limit bounds the whole exchange, from connecting to the answer's
	// last byte (the Transport's ResponseHeaderTimeout, for small answers).
	limit time.Duration
}

// RoundTrip sends req on a connection of its own.
func (o oneShot) RoundTrip(req *http.Request) (*http.Response, error) {
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	conn, err := o.dialer.DialContext(req.Context(), "tcp", addr)
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper closes it, even on failure
		}
		return nil, err
	}
	// A request given up closes its connection, without a goroutine
	// waiting for that on every connection.
	stop := context.AfterFunc(req.Context(), func() { conn.Close() })
	resp, err := o.exchange(conn, req)
	if err != nil {
		stop()
		conn.Close()
		return nil, err
	}
	resp.Body = connBody{ReadCloser: resp.Body, conn: conn, stop: stop}
	return resp, nil
}

// exchange writes req on conn (which closes its body) and reads the
// answer's header, all within the limit.
func (o oneShot) exchange(conn net.Conn, req *http.Request) (*http.Response, error) {
	if err := conn.SetDeadline(time.Now().Add(o.limit)); err != nil {
		return nil, err
	}
	if err := req.Write(conn); err != nil {
		return nil, err
	}
	return http.ReadResponse(bufio.NewReader(conn), req)
}

// connBody is an answer's body that closes its connection with it.
type connBody struct {
	io.ReadCloser
	conn net.Conn
	stop func() bool
}

func (b connBody) Close() error {
	b.stop()
	b.ReadCloser.Close()
	return b.conn.Close()
}
