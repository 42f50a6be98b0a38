package tftp

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
)

// RFC 7440 windowsize: the sender sends a window of blocks back to back and
// the receiver acknowledges the last one it got in order. An ACK of the
// window's last block moves the window on whole; an ACK of an earlier block
// says the blocks after it were lost, and the window restarts after it; a
// timeout sends the window again.

// maxWindowSize is the largest windowsize RFC 7440 allows.
const maxWindowSize = 65535

// SetMaxWindowSize lets clients ask for the RFC 7440 windowsize option, and
// grants at most n (a larger request is answered with n). With n of 0 or 1
// the option is ignored, as without this call.
func (s *Server) SetMaxWindowSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxWindow = min(max(n, 0), maxWindowSize)
}

// negotiateWindow answers a client's windowsize option: the size granted,
// or 0 when the option is to be left out of the OACK.
func negotiateWindow(value string, limit int) int {
	n, err := strconv.Atoi(value)
	if err != nil || n < 1 || n > maxWindowSize || limit < 2 {
		return 0
	}
	return min(n, limit)
}

// window is the blocks read but not yet acknowledged, in a ring.
type window struct {
	blocks [][]byte // each a whole DATA datagram: header and data
	first  uint64   // index of the oldest unacknowledged block (block number first+1, mod 2^16)
	count  int      // blocks held, from first on
	eof    bool     // the last block (shorter than the block size) is held
}

func (w *window) at(i uint64) []byte { return w.blocks[i%uint64(len(w.blocks))] }

// fill reads blocks from r until the window is full or the data ends, and
// returns the bytes read.
func (w *window) fill(r io.Reader, blockSize int) (int64, error) {
	var n int64
	for w.count < len(w.blocks) && !w.eof {
		i := w.first + uint64(w.count)
		b := w.at(i)
		b = b[:cap(b)]
		l, err := io.ReadFull(r, b[4:4+blockSize])
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			w.eof = true
		case err != nil:
			return n, err
		}
		if l < blockSize {
			w.eof = true
		}
		binary.BigEndian.PutUint16(b[0:2], opDATA)
		binary.BigEndian.PutUint16(b[2:4], uint16(i+1))
		w.blocks[i%uint64(len(w.blocks))] = b[:4+l]
		w.count++
		n += int64(l)
	}
	return n, nil
}

// acknowledge takes an ACK of block number block and returns how many of
// the held blocks it acknowledges: 0 for an ACK of the block before the
// window (nothing of it arrived in order) or for a stale ACK.
func (w *window) acknowledge(block uint16) int {
	d := int(block - uint16(w.first))
	if d > w.count {
		return 0
	}
	w.first += uint64(d)
	w.count -= d
	return d
}

// readFromWindow sends r with the negotiated windowsize; the OACK has been
// acknowledged.
func readFromWindow(s *sender, r io.Reader) (int64, error) {
	blockSize := len(s.send) - 4
	w := &window{blocks: make([][]byte, s.window)}
	for i := range w.blocks {
		w.blocks[i] = make([]byte, len(s.send))
	}
	var n int64
	s.retry.reset()
	resent := 0 // windows sent again on an ACK that acknowledged nothing
	for {
		read, err := w.fill(r, blockSize)
		n += read
		if err != nil {
			s.abort(err)
			return n, err
		}
		if w.count == 0 { // every block acknowledged, the last one too
			if s.hook != nil {
				s.hook.OnSuccess(s.buildTransferStats())
			}
			return n, nil
		}
		for i := range w.count {
			if err := s.conn.sendTo(w.at(w.first+uint64(i)), s.addr); err != nil {
				s.abort(err)
				return n, err
			}
			s.datagramsSent++
		}
		acked, err := s.awaitWindowACK(w)
		if err != nil {
			if _, ok := err.(net.Error); ok && s.retry.count() < s.retries {
				s.retry.backoff()
				continue // the window again
			}
			s.abort(err)
			return n, err
		}
		if acked > 0 {
			s.retry.reset()
			resent = 0
			s.datagramsAcked++
			continue
		}
		// A receiver that keeps acknowledging nothing must not keep the
		// sender going (RFC 1350's Sorcerer's Apprentice, by windows).
		if resent++; resent > s.retries {
			err := fmt.Errorf("sending block %d: the receiver acknowledged none of the window %d times", uint16(w.first+1), resent)
			s.abort(err)
			return n, err
		}
	}
}

// awaitWindowACK waits for the receiver's ACK of the window and returns how
// many blocks it acknowledged (0: send the window again from the first
// unacknowledged block).
func (s *sender) awaitWindowACK(w *window) (int, error) {
	if err := s.conn.setDeadline(s.timeout); err != nil {
		return 0, err
	}
	for {
		n, addr, err := s.conn.readFrom(s.receive)
		if err != nil {
			return 0, err
		}
		if !addr.IP.Equal(s.addr.IP) || (s.tid != 0 && addr.Port != s.tid) {
			continue
		}
		p, err := parsePacket(s.receive[:n])
		if err != nil {
			continue
		}
		switch p := p.(type) {
		case pACK:
			s.block = p.block()
			return w.acknowledge(p.block()), nil
		case pERROR:
			return 0, fmt.Errorf("sending block %d: %w", uint16(w.first+1), &PeerError{Code: p.code(), Message: p.message()})
		}
	}
}
