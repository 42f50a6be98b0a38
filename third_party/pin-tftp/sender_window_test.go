package tftp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"net"
	"strconv"
	"testing"
	"time"
)

func TestWindowSizeNegotiation(t *testing.T) {
	for _, tc := range []struct {
		asked string
		limit int
		want  string // "" for no windowsize in the OACK
	}{
		{"4", 64, "4"},
		{"100", 64, "64"},
		{"64", 0, ""},
		{"64", 1, ""},
		{"0", 64, ""},
		{"65536", 64, ""},
		{"many", 64, ""},
	} {
		t.Run(tc.asked+"/"+strconv.Itoa(tc.limit), func(t *testing.T) {
			c := startWindowed(t, []byte("x"), tc.limit, options{"windowsize": tc.asked, "blksize": "512"})
			if got := c.oack["windowsize"]; got != tc.want {
				t.Fatalf("windowsize %s asked of a server granting %d: OACK says %q, want %q", tc.asked, tc.limit, got, tc.want)
			}
		})
	}
}

func TestWindowSizeSendsTheWholeFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		window  int
		blksize int
		size    int
		lose    []uint64 // blocks (counted from 1, without wrapping) dropped once each
		maxAcks int
	}{
		{name: "short last block", window: 8, blksize: 512, size: 100000, maxAcks: 26},
		{name: "empty last block", window: 4, blksize: 1468, size: 1468 * 40, maxAcks: 12},
		{name: "one window", window: 64, blksize: 512, size: 300, maxAcks: 2},
		{name: "block numbers wrap", window: 64, blksize: 8, size: 8*70000 + 3, maxAcks: 1097},
		{name: "lost blocks", window: 16, blksize: 512, size: 512 * 100, lose: []uint64{5, 40, 41, 100}, maxAcks: 8 + 3*4},
		{name: "last block lost", window: 8, blksize: 512, size: 512*8 - 1, lose: []uint64{8}, maxAcks: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := make([]byte, tc.size)
			rand.New(rand.NewSource(int64(tc.size))).Read(data)
			c := startWindowed(t, data, 64, options{"windowsize": strconv.Itoa(tc.window), "blksize": strconv.Itoa(tc.blksize)})
			if c.oack["windowsize"] != strconv.Itoa(tc.window) {
				t.Fatalf("OACK %v, want windowsize %d", c.oack, tc.window)
			}
			lose := map[uint64]bool{}
			for _, b := range tc.lose {
				lose[b] = true
			}
			got, acks := c.receive(t, tc.window, tc.blksize, lose)
			if !bytes.Equal(got, data) {
				t.Fatalf("received %d bytes, not the %d sent", len(got), len(data))
			}
			if acks > tc.maxAcks {
				t.Fatalf("%d ACKs for %d blocks in windows of %d, want at most %d", acks, tc.size/tc.blksize+1, tc.window, tc.maxAcks)
			}
			if err := <-c.done; err != nil {
				t.Fatalf("the sender says: %v", err)
			}
		})
	}
}

// A receiver that acknowledges nothing of any window ends the transfer
// after the retries, not after resending forever.
func TestWindowSizeGivesUpOnAReceiverThatAcknowledgesNothing(t *testing.T) {
	c := startWindowed(t, make([]byte, 512*64), 64, options{"windowsize": "8", "blksize": "512"})
	buf := make([]byte, 1024)
	for i := 0; ; i++ {
		c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, _, err := c.conn.ReadFromUDP(buf); err != nil {
			t.Fatalf("after %d datagrams: %v", i, err)
		}
		if binary.BigEndian.Uint16(buf) == opERROR {
			break
		}
		if binary.BigEndian.Uint16(buf[2:]) == 8 { // each window's end: acknowledge the OACK again
			c.ack(t, 0)
		}
		if i > 1000 {
			t.Fatal("still sending after 1,000 datagrams")
		}
	}
	if err := <-c.done; err == nil {
		t.Fatal("the transfer succeeded")
	}
}

// windowedClient is the receiving end of one transfer.
type windowedClient struct {
	conn   *net.UDPConn
	server *net.UDPAddr
	oack   options
	done   chan error // the server's read handler's result
}

// startWindowed asks a server that grants up to limit for data with opts,
// and reads its OACK.
func startWindowed(t *testing.T, data []byte, limit int, opts options) *windowedClient {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &windowedClient{conn: conn, done: make(chan error, 1)}
	s := NewServer(func(_ string, rf io.ReaderFrom) error {
		_, err := rf.ReadFrom(bytes.NewReader(data))
		c.done <- err
		return err
	}, nil)
	s.SetMaxWindowSize(limit)
	s.SetTimeout(200 * time.Millisecond)
	s.SetRetries(3)
	s.SetBackoff(func(int) time.Duration { return 0 })
	t.Cleanup(s.Shutdown)
	request := make([]byte, datagramLength)
	n := packRQ(request, opRRQ, "file", "octet", opts)
	if err := s.handlePacket(net.IPv4(127, 0, 0, 1), conn.LocalAddr().(*net.UDPAddr), request, n, 65464, nil); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1024)
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, c.server, err = conn.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no OACK: %v", err)
	}
	p, err := parsePacket(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	oack, ok := p.(pOACK)
	if !ok {
		t.Fatalf("got %T, want an OACK", p)
	}
	if c.oack, err = unpackOACK(oack); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *windowedClient) ack(t *testing.T, block uint16) {
	t.Helper()
	b := make([]byte, 4)
	binary.BigEndian.PutUint16(b, opACK)
	binary.BigEndian.PutUint16(b[2:], block)
	if _, err := c.conn.WriteToUDP(b, c.server); err != nil {
		t.Fatal(err)
	}
}

// receive is an RFC 7440 receiver: it acknowledges each window's last block
// and the last block of the file; a block out of order (after a loss) is
// answered once with an ACK of the last block received in order; a
// timeout with that ACK again. Blocks in lose are dropped the first time.
func (c *windowedClient) receive(t *testing.T, window, blksize int, lose map[uint64]bool) ([]byte, int) {
	t.Helper()
	var data []byte
	next := uint64(1) // the block expected, counted without wrapping
	inWindow, acks := 0, 0
	gapAcked := uint64(0)
	send := func(block uint64) {
		c.ack(t, uint16(block))
		acks++
	}
	send(0)
	buf := make([]byte, blksize+4)
	for {
		c.conn.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := c.conn.ReadFromUDP(buf)
		var timeout net.Error
		if errors.As(err, &timeout) && timeout.Timeout() {
			send(next - 1)
			inWindow = 0
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if binary.BigEndian.Uint16(buf) != opDATA {
			t.Fatalf("got opcode %d, want DATA", binary.BigEndian.Uint16(buf))
		}
		if binary.BigEndian.Uint16(buf[2:]) != uint16(next) {
			if gapAcked != next {
				send(next - 1)
				gapAcked, inWindow = next, 0
			}
			continue
		}
		if lose[next] {
			delete(lose, next)
			continue
		}
		data = append(data, buf[4:n]...)
		next++
		inWindow++
		if n-4 < blksize {
			send(next - 1)
			return data, acks
		}
		if inWindow == window {
			send(next - 1)
			inWindow = 0
		}
	}
}

// The OACK of a small blksize with more options than fit in one of its
// DATA datagrams is still sent whole (it used to overrun the buffer).
func TestSmallBlockSizeOACKCarriesEveryOption(t *testing.T) {
	c := startWindowed(t, make([]byte, 100), 64, options{"blksize": "8", "tsize": "0", "windowsize": "16"})
	if c.oack["blksize"] != "8" || c.oack["tsize"] != "100" || c.oack["windowsize"] != "16" {
		t.Fatalf("OACK %v, want blksize 8, tsize 100 and windowsize 16", c.oack)
	}
	got, _ := c.receive(t, 16, 8, nil)
	if len(got) != 100 {
		t.Fatalf("received %d bytes, want 100", len(got))
	}
}
