package bridge

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// batchedConn is a connection whose reads are buffered and whose writes
// are gathered. The MQTT client writes each packet with a call of its own
// and reads each acknowledgement a few bytes at a time, straight from the
// socket: a backlog of 100,000 events cost some 400,000 system calls.
// Here a write is appended to a buffer that one goroutine sends while the
// client goes on, so that what is written while a send is under way
// leaves in the next one; a write waits only when maxPending bytes are
// already waiting. A failed send fails the writes after it.
type batchedConn struct {
	net.Conn
	r *bufio.Reader

	mu       sync.Mutex
	drained  *sync.Cond // signalled as sends finish
	pending  []byte     // written, not yet sent
	inSend   int        // bytes being sent now
	sending  bool       // a goroutine is sending
	err      error      // the first failed send
	spareBuf []byte
}

// maxPending bounds what waits to be sent and is being sent: a slow
// upstream slows the writer instead of growing the buffer.
const maxPending = 256 << 10

func newBatchedConn(c net.Conn) *batchedConn {
	b := &batchedConn{Conn: c, r: bufio.NewReaderSize(c, 32<<10)}
	b.drained = sync.NewCond(&b.mu)
	return b
}

func (b *batchedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *batchedConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending)+b.inSend >= maxPending && b.err == nil {
		b.drained.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	b.pending = append(b.pending, p...)
	if !b.sending {
		b.sending = true
		go b.send()
	}
	return len(p), nil
}

// send sends what is pending until nothing is.
func (b *batchedConn) send() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) > 0 && b.err == nil {
		out := b.pending
		b.pending, b.inSend = b.spareBuf[:0], len(out)
		b.mu.Unlock()
		_, err := b.Conn.Write(out)
		b.mu.Lock()
		b.spareBuf, b.inSend = out, 0
		if err != nil {
			b.err = err
		}
		b.drained.Broadcast()
	}
	b.sending = false
	b.drained.Broadcast()
}

// Close sends what is pending (the client's DISCONNECT among it), for at
// most a second, then closes.
func (b *batchedConn) Close() error {
	done := make(chan struct{})
	go func() {
		b.mu.Lock()
		for b.sending && b.err == nil {
			b.drained.Wait()
		}
		b.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
	}
	return b.Conn.Close()
}

// dialBatched opens mqtt:// and mqtts:// connections as batchedConns;
// other schemes (WebSocket) are left to the client library.
func dialBatched(u *url.URL, tlsConfig *tls.Config, timeout time.Duration) paho.OpenConnectionFunc {
	if u.Scheme != "mqtt" && u.Scheme != "mqtts" {
		return nil
	}
	return func(uri *url.URL, _ paho.ClientOptions) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var c net.Conn
		var err error
		if uri.Scheme == "mqtts" {
			c, err = (&tls.Dialer{Config: tlsConfig}).DialContext(ctx, "tcp", uri.Host)
		} else {
			c, err = (&net.Dialer{}).DialContext(ctx, "tcp", uri.Host)
		}
		if err != nil {
			return nil, err
		}
		return newBatchedConn(c), nil
	}
}
