package tftp

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// A request its handler leaves unanswered gets no ERROR: the client asks
// again after its timeout, and that request is served.
func TestUnansweredRequestIsAskedAgain(t *testing.T) {
	var requests atomic.Int32
	s := NewServer(func(_ string, rf io.ReaderFrom) error {
		if requests.Add(1) == 1 {
			return ErrUnanswered
		}
		_, err := rf.ReadFrom(bytes.NewReader([]byte("the loader")))
		return err
	}, nil)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(conn)
	defer s.Shutdown()
	c, _ := NewClient(conn.LocalAddr().String())
	c.SetTimeout(200 * time.Millisecond)
	c.SetBackoff(func(int) time.Duration { return 0 })
	wt, err := c.Receive("f", "octet")
	if err != nil {
		t.Fatalf("the client gave up: %v", err)
	}
	var got bytes.Buffer
	if _, err := wt.WriteTo(&got); err != nil || got.String() != "the loader" {
		t.Fatalf("received %q (%v)", got.String(), err)
	}
	if n := requests.Load(); n != 2 {
		t.Fatalf("%d requests reached the handler, want 2", n)
	}
}
