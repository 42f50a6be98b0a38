package storm

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/slipway/slipway/netboot/udpbuf"
)

// dhcpLink is one raw socket on the LAN interface that every simulated
// machine speaks DHCP through, each with its own MAC as chaddr and the
// broadcast flag set, as PXE firmware does; replies are handed to the
// machine waiting on their transaction id.
type dhcpLink struct {
	conn net.PacketConn
	loss float64 // share of packets lost, each way

	mu      sync.Mutex
	waiting map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4
}

// clientPortOnly keeps everything but UDP to port 68 out of the socket:
// the storm's TFTP and HTTP traffic goes over the same interface, and
// copying it all to user space would cost more than the DHCP itself.
var clientPortOnly = []bpf.Instruction{
	bpf.LoadAbsolute{Off: 9, Size: 1}, // IPv4 protocol
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_UDP, SkipTrue: 4},
	bpf.LoadMemShift{Off: 0},          // X = IPv4 header length
	bpf.LoadIndirect{Off: 2, Size: 2}, // UDP destination port
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 68, SkipFalse: 1},
	bpf.RetConstant{Val: 1 << 16},
	bpf.RetConstant{Val: 0},
}

func openDHCPLink(iface string, loss float64) (*dhcpLink, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	filter, err := bpf.Assemble(clientPortOnly)
	if err != nil {
		return nil, err
	}
	raw, err := packet.Listen(ifi, packet.Datagram, unix.ETH_P_IP, &packet.Config{Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("raw socket on %s: %w", iface, err)
	}
	// A storm's replies come in bursts, as the server's requests do: a
	// small buffer drops them, and every drop costs a machine a firmware
	// retransmission.
	if err := udpbuf.GrowConn(raw); err != nil {
		raw.Close()
		return nil, err
	}
	l := &dhcpLink{conn: nclient4.NewBroadcastUDPConn(raw, &net.UDPAddr{Port: dhcpv4.ClientPort}), loss: loss,
		waiting: make(map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4)}
	go l.receive()
	return l, nil
}

func (l *dhcpLink) close() error { return l.conn.Close() }

func (l *dhcpLink) receive() {
	// A frame's worth: the raw connection allocates a packet this size
	// (plus headers) for every read, and 64 KiB a reply was a twentieth of
	// the storm's own CPU.
	buf := make([]byte, 1500)
	for {
		n, _, err := l.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		msg, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || msg.OpCode != dhcpv4.OpcodeBootReply || l.lost() {
			continue
		}
		l.mu.Lock()
		ch := l.waiting[msg.TransactionID]
		l.mu.Unlock()
		if ch != nil {
			select {
			case ch <- msg:
			default: // a duplicate reply the machine has no room for
			}
		}
	}
}

func (l *dhcpLink) lost() bool { return l.loss > 0 && rand.Float64() < l.loss }

// retransmit is PXE firmware's schedule for a DHCP message that got no
// answer (the PXE specification's 4, 8, 16 and 32 seconds).
var retransmit = []time.Duration{4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second}

// errNoAnswer is a DHCP message that got no answer after every retransmission.
var errNoAnswer = errors.New("no answer")

// exchange sends msg until a reply of type want (or a NAK) comes back; it
// says how many times it sent it.
func (l *dhcpLink) exchange(ctx context.Context, msg *dhcpv4.DHCPv4, want dhcpv4.MessageType) (*dhcpv4.DHCPv4, int, error) {
	ch := make(chan *dhcpv4.DHCPv4, 4)
	l.mu.Lock()
	l.waiting[msg.TransactionID] = ch
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.waiting, msg.TransactionID)
		l.mu.Unlock()
	}()
	bcast := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}
	for sent, wait := range retransmit {
		if !l.lost() {
			if _, err := l.conn.WriteTo(msg.ToBytes(), bcast); err != nil {
				return nil, sent + 1, fmt.Errorf("send %s: %w", msg.MessageType(), err)
			}
		}
		timer := time.NewTimer(wait)
		for answered := false; !answered; {
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil, sent + 1, ctx.Err()
			case <-timer.C:
				answered = true // not answered: send again
			case reply := <-ch:
				switch reply.MessageType() {
				case want:
					timer.Stop()
					return reply, sent + 1, nil
				case dhcpv4.MessageTypeNak:
					timer.Stop()
					return nil, sent + 1, fmt.Errorf("NAK: %s", reply.Message())
				}
			}
		}
	}
	return nil, len(retransmit), fmt.Errorf("%s: %w after %d tries", msg.MessageType(), errNoAnswer, len(retransmit))
}

// dora gets mac a lease: DISCOVER, OFFER, REQUEST, ACK. It says how many
// messages it sent again for want of an answer.
func (l *dhcpLink) dora(ctx context.Context, mac net.HardwareAddr, mods ...dhcpv4.Modifier) (*dhcpv4.DHCPv4, int, error) {
	mods = append(mods, dhcpv4.WithBroadcast(true))
	discover, err := dhcpv4.NewDiscovery(mac, mods...)
	if err != nil {
		return nil, 0, err
	}
	offer, sentD, err := l.exchange(ctx, discover, dhcpv4.MessageTypeOffer)
	if err != nil {
		return nil, sentD - 1, err
	}
	request, err := dhcpv4.NewRequestFromOffer(offer, mods...)
	if err != nil {
		return nil, sentD - 1, err
	}
	ack, sentR, err := l.exchange(ctx, request, dhcpv4.MessageTypeAck)
	return ack, sentD - 1 + sentR - 1, err
}
