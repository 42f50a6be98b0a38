package tftp

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand"
	"net"
	"strconv"
	"testing"
	"time"
)

// ackCounter is a Hook that keeps the stats of the transfer it saw.
type ackCounter chan TransferStats

func (h ackCounter) OnSuccess(s TransferStats)            { h <- s }
func (h ackCounter) OnFailure(s TransferStats, err error) { h <- s }

// A client asking for a windowsize gets the file whole, acknowledging
// only each window's last block: the server, quick to resend, never has
// to send a block twice.
func TestClientWindowSizeReceivesTheWholeFile(t *testing.T) {
	for _, tc := range []struct {
		name           string
		asked, granted int
		blksize, size  int
		wantSent       int // datagrams the server sends: the OACK and every block once
	}{
		{"short last block", 4, 64, 512, 100000, 1 + 100000/512 + 1},
		{"empty last block", 4, 64, 512, 512 * 40, 1 + 41},
		{"granted fewer", 16, 8, 512, 512*30 + 7, 1 + 31},
		{"not granted: lock-step", 4, 0, 512, 5000, 1 + 10},
		{"block numbers wrap", 64, 64, 8, 8*70000 + 3, 1 + 70001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := make([]byte, tc.size)
			rand.New(rand.NewSource(int64(tc.size))).Read(data)
			stats := make(ackCounter, 1)
			s := NewServer(func(_ string, rf io.ReaderFrom) error {
				_, err := rf.ReadFrom(bytes.NewReader(data))
				return err
			}, nil)
			s.SetMaxWindowSize(tc.granted)
			s.SetTimeout(300 * time.Millisecond)
			s.SetHook(stats)
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			go s.Serve(conn)
			defer s.Shutdown()
			c, err := NewClient(conn.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			c.SetBlockSize(tc.blksize)
			c.SetWindowSize(tc.asked)
			c.SetTimeout(5 * time.Second)
			wt, err := c.Receive("f", "octet")
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if _, err := wt.WriteTo(&got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("received %d bytes, not the %d sent", got.Len(), len(data))
			}
			if st := <-stats; st.DatagramsSent != tc.wantSent {
				t.Fatalf("the server sent %d datagrams, want %d (the OACK and each block once): the client's ACKs made it resend", st.DatagramsSent, tc.wantSent)
			}
		})
	}
}

// A window cut short (a block lost) is acknowledged up to the last block
// received in order when the client's timeout runs out, and the transfer
// goes on from there.
func TestClientWindowSizeRecoversALostBlock(t *testing.T) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const blksize = 512
	data := make([]byte, blksize*6+100) // blocks 1..7, the last one short
	rand.New(rand.NewSource(1)).Read(data)
	block := func(n int) []byte {
		b := data[(n-1)*blksize : min(n*blksize, len(data))]
		p := make([]byte, 4+len(b))
		binary.BigEndian.PutUint16(p[0:2], opDATA)
		binary.BigEndian.PutUint16(p[2:4], uint16(n))
		copy(p[4:], b)
		return p
	}
	received := make(chan []byte, 1)
	go func() {
		c, _ := NewClient(srv.LocalAddr().String())
		c.SetBlockSize(blksize)
		c.SetWindowSize(4)
		c.SetTimeout(200 * time.Millisecond)
		var got bytes.Buffer
		if wt, err := c.Receive("f", "octet"); err == nil {
			wt.WriteTo(&got)
		}
		received <- got.Bytes()
	}()
	buf := make([]byte, 2048)
	srv.SetDeadline(time.Now().Add(10 * time.Second))
	n, client, err := srv.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	_, _, opts, _ := unpackRQ(buf[:n])
	if opts["windowsize"] != "4" {
		t.Fatalf("the RRQ asks %v, want windowsize 4", opts)
	}
	expectACK := func(want uint16) {
		t.Helper()
		n, _, err := srv.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("waiting for ACK %d: %v", want, err)
		}
		if p, _ := parsePacket(buf[:n]); p == nil || binary.BigEndian.Uint16(buf[0:2]) != opACK || binary.BigEndian.Uint16(buf[2:4]) != want {
			t.Fatalf("got % x, want ACK %d", buf[:n], want)
		}
	}
	send := func(blocks ...int) {
		for _, b := range blocks {
			srv.WriteToUDP(block(b), client)
		}
	}
	oack := make([]byte, 64)
	srv.WriteToUDP(oack[:packOACK(oack, options{"windowsize": "4", "blksize": strconv.Itoa(blksize)})], client)
	expectACK(0)
	send(1, 2, 4) // 3 is lost
	expectACK(2)  // after the client's timeout
	send(3, 4, 5, 6)
	expectACK(6)
	send(7)
	expectACK(7)
	if got := <-received; !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes, not the %d sent", len(got), len(data))
	}
}
