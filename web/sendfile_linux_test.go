package web

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sendFile is checked over a real TCP connection whose reader is slow
// enough that the send buffer fills (so the poller's wait is taken) and
// with more than one chunk to send: the bytes, the count, what is left of a
// limit, and where the file stands afterwards.
func TestSendFileCopiesWhatTheReaderAllows(t *testing.T) {
	content := make([]byte, 3*sendfileChunk+17)
	for i := range content {
		content[i] = byte(rand.IntN(256))
	}
	path := filepath.Join(t.TempDir(), "initrd")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	size := int64(len(content))
	cases := []struct {
		name          string
		offset, limit int64 // limit < 0: the file itself, not limited
		want          int64
		handled       bool
	}{
		{name: "whole file", limit: -1, want: size, handled: true},
		{name: "a range across chunks", offset: 1000, limit: 2*sendfileChunk + 5, want: 2*sendfileChunk + 5, handled: true},
		{name: "a range in the last bytes", offset: size - 10, limit: 10, want: 10, handled: true},
		{name: "a limit past the end", offset: size - 100, limit: 1 << 30, want: 100, handled: true},
	}
	root, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, tc := range cases {
		for _, kind := range []string{"os.File", "positioned"} {
			t.Run(tc.name+" of an "+kind, func(t *testing.T) {
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				var src io.ReadSeeker = f
				if kind == "positioned" {
					pf, err := RegularFiles(root).Open(filepath.Base(path))
					if err != nil {
						t.Fatal(err)
					}
					defer pf.Close()
					src = pf.(io.ReadSeeker)
				}
				if _, err := src.Seek(tc.offset, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				var r io.Reader = src
				lr := &io.LimitedReader{R: src, N: tc.limit}
				if tc.limit >= 0 {
					r = lr
				}
				got, n, handled, err := sendOverTCP(t, r)
				if err != nil || handled != tc.handled || n != tc.want {
					t.Fatalf("sendFile = %d, handled %v, %v; want %d, handled %v", n, handled, err, tc.want, tc.handled)
				}
				if !bytes.Equal(got, content[tc.offset:tc.offset+tc.want]) {
					t.Fatalf("received %d bytes that differ from the file's %d at %d", len(got), tc.want, tc.offset)
				}
				if tc.limit >= 0 && lr.N != tc.limit-tc.want {
					t.Errorf("limit left %d, want %d", lr.N, tc.limit-tc.want)
				}
				if pos, _ := src.Seek(0, io.SeekCurrent); pos != tc.offset+tc.want {
					t.Errorf("file at %d after, want %d", pos, tc.offset+tc.want)
				}
				if pf, ok := src.(*positionedFile); ok {
					if pos, _ := pf.file.Seek(0, io.SeekCurrent); pos != 0 {
						t.Errorf("the descriptor's own position moved to %d", pos)
					}
				}
			})
		}
	}
}

// What is not a file is left to the caller, untouched.
func TestSendFileLeavesOtherReadersAlone(t *testing.T) {
	r := strings.NewReader("not a file")
	got, n, handled, err := sendOverTCP(t, r)
	if handled || n != 0 || err != nil || len(got) != 0 || r.Len() != len("not a file") {
		t.Fatalf("sendFile of a string: %d, handled %v, %v, %q received", n, handled, err, got)
	}
}

// sendOverTCP sends r by sendFile on a loopback connection with a small send
// buffer whose far end starts reading late, and returns what arrived.
func sendOverTCP(t *testing.T, r io.Reader) (got []byte, n int64, handled bool, err error) {
	t.Helper()
	ln, lerr := net.Listen("tcp", "127.0.0.1:0")
	if lerr != nil {
		t.Fatal(lerr)
	}
	defer ln.Close()
	received := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- nil
			return
		}
		defer c.Close()
		time.Sleep(50 * time.Millisecond) // the sender's buffer fills meanwhile
		b, _ := io.ReadAll(c)
		received <- b
	}()
	c, derr := net.Dial("tcp", ln.Addr().String())
	if derr != nil {
		t.Fatal(derr)
	}
	_ = c.(*net.TCPConn).SetWriteBuffer(64 << 10) // far less than the file
	n, handled, err = sendFile(c.(syscall.Conn), r)
	c.Close()
	return <-received, n, handled, err
}

// A file answer's header waits in the corked socket for the file, and
// every answer ends with the socket uncorked: after the file, before the
// next request is read when no file came (a 304), at the next answer's
// write; an answer announced as no file is never corked.
func TestFileAnswersHeaderLeavesWithTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(path, bytes.Repeat([]byte("k"), 100_000), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		announce bool
		then     func(t *testing.T, c *addressConn)
		want     int // bytes the client gets
	}{
		{"the file follows", true, func(t *testing.T, c *addressConn) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := c.ReadFrom(f); err != nil {
				t.Fatal(err)
			}
		}, len("header") + 100_000},
		{"no file came: the next read uncorks", true, func(t *testing.T, c *addressConn) {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			_, _ = c.Read(make([]byte, 1))
		}, len("header")},
		{"another answer's write uncorks", true, func(t *testing.T, c *addressConn) {
			c.fileFollows = false // as after a read
			if _, err := c.Write([]byte("next")); err != nil {
				t.Fatal(err)
			}
		}, len("header") + len("next")},
		{"not announced", false, func(*testing.T, *addressConn) {}, len("header")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			server, client := tcpPair(t)
			c := &addressConn{Conn: server, release: func() {}}
			if tc.announce {
				c.FileFollows()
			}
			if _, err := c.Write([]byte("header")); err != nil {
				t.Fatal(err)
			}
			if corkedNow(t, server) != tc.announce {
				t.Fatalf("after the header the socket is corked: %v, want %v", !tc.announce, tc.announce)
			}
			tc.then(t, c)
			if corkedNow(t, server) {
				t.Fatal("the answer is over and the socket is still corked")
			}
			_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadFull(client, make([]byte, tc.want))
			if err != nil {
				t.Fatalf("the client got %d of %d bytes: %v", got, tc.want, err)
			}
		})
	}
}

// tcpPair is a connected loopback TCP pair.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// corkedNow says whether c's socket is corked.
func corkedNow(t *testing.T, c net.Conn) bool {
	t.Helper()
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := raw.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v != 0
}
