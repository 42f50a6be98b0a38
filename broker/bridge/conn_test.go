package bridge

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Everything written arrives, in order, however the writes and sends
// interleave; reads are served through the buffer.
func TestBatchedConnSendsEverythingInOrder(t *testing.T) {
	client, server := net.Pipe()
	b := newBatchedConn(client)
	var got bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&got, server); close(done) }()
	var want bytes.Buffer
	for i := range 5000 {
		p := bytes.Repeat([]byte{byte(i)}, 1+i%300)
		want.Write(p)
		if n, err := b.Write(p); n != len(p) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	<-done
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("sent %d bytes, %d arrived, or not in order", want.Len(), got.Len())
	}
}

// A writer that outruns the connection waits once maxPending bytes wait.
func TestBatchedConnHoldsBackAWriterPastItsBound(t *testing.T) {
	client, server := net.Pipe() // unbuffered: nothing leaves until read
	b := newBatchedConn(client)
	wrote := make(chan struct{})
	go func() {
		b.Write(make([]byte, maxPending)) // fills the buffer
		b.Write(make([]byte, 1))          // waits for room
		close(wrote)
	}()
	select {
	case <-wrote:
		t.Fatal("a write past the bound did not wait")
	case <-time.After(100 * time.Millisecond):
	}
	go io.Copy(io.Discard, server)
	select {
	case <-wrote:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer still waits once the connection reads")
	}
	b.Close()
}

// A send that fails fails the writes after it.
func TestBatchedConnReportsAFailedSend(t *testing.T) {
	client, server := net.Pipe()
	server.Close()
	b := newBatchedConn(client)
	b.Write([]byte("lost"))
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		_, err = b.Write([]byte("x"))
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("write after a failed send: %v", err)
	}
}

// Reads and writes from several goroutines, as the MQTT client does.
func TestBatchedConnUnderConcurrentUse(t *testing.T) {
	client, server := net.Pipe()
	b := newBatchedConn(client)
	go io.Copy(server, server) // echo
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 1000 {
			b.Write([]byte("ping"))
		}
	})
	got := make([]byte, 4000)
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !bytes.Equal(got, bytes.Repeat([]byte("ping"), 1000)) {
		t.Fatal("echo differs")
	}
	b.Close()
}
