package web

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A file written to a limited connection goes through the TCP connection's
// own ReadFrom (sendfile), and arrives whole.
func TestLimitedConnectionKeepsSendfile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limited := boundConnections(ln, 4, newConnectionSlots(16, slog.Default()))
	defer limited.Close()
	want := bytes.Repeat([]byte("slipway "), 1<<17)
	path := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := limited.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		rf, ok := c.(io.ReaderFrom)
		if !ok {
			t.Error("the limited connection is not an io.ReaderFrom: files would be copied through user space")
			return
		}
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		if _, err := rf.ReadFrom(f); err != nil {
			t.Error(err)
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes, want %d", len(got), len(want))
	}
}

// Past the bound in all, the next connection is not refused: it waits
// in the kernel's queue and is accepted as soon as another closes. A
// listener closed while Accept waits for a place stops it.
func TestConnectionsPastTheBoundWaitTheirTurn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limited := boundConnections(ln, 8, newConnectionSlots(2, slog.Default()))
	accepted := make(chan net.Conn, 3)
	stopped := make(chan error, 1)
	go func() {
		for {
			c, err := limited.Accept()
			if err != nil {
				stopped <- err
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted past a bound of two")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	select {
	case third := <-accepted:
		third.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting connection was not accepted when one closed")
	}
	second.Close()
	// Both places free again: the next Accept waits on the kernel, and
	// Close must end it; with both taken it waits for a place, and Close
	// must end that too.
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	<-accepted
	<-accepted
	limited.Close()
	select {
	case err := <-stopped:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept kept waiting for a place after Close")
	}
}
