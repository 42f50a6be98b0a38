package web

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// A file written to a limited connection goes through the TCP connection's
// own ReadFrom (sendfile), and arrives whole.
func TestLimitedConnectionKeepsSendfile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limited := limitPerAddress(ln, 4)
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
