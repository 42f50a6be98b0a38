package ra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// ErrNoLinkLocal means the interface has no IPv6 link-local address (IPv6
// off, or loopback): there is nothing to answer on.
var ErrNoLinkLocal = errors.New("no IPv6 link-local address")

// Responder answers router solicitations on one interface.
type Responder struct {
	ifi  *net.Interface
	conn net.PacketConn
	pc   *ipv6.PacketConn
	log  *slog.Logger
}

var allRouters = &net.IPAddr{IP: net.ParseIP("ff02::2")}

// New opens the ICMPv6 socket on iface.
func New(iface string, log *slog.Logger) (*Responder, error) {
	if log == nil {
		log = slog.Default()
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	if err := hasLinkLocal(ifi); err != nil {
		return nil, err
	}
	// Bound to the device, not to the link-local address: right after the
	// link comes up that address is still tentative and cannot be bound.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), ifi.Name) })
		return errors.Join(err, serr)
	}}
	conn, err := lc.ListenPacket(context.Background(), "ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, fmt.Errorf("ICMPv6 socket on %s: %w", iface, err)
	}
	r := &Responder{ifi: ifi, conn: conn, pc: ipv6.NewPacketConn(conn), log: log.With("part", "ra")}
	if err := r.setup(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ICMPv6 socket on %s: %w", iface, err)
	}
	return r, nil
}

func (r *Responder) setup() error {
	var filter ipv6.ICMPFilter
	filter.SetAll(true)
	filter.Accept(ipv6.ICMPTypeRouterSolicitation)
	if err := r.pc.SetICMPFilter(&filter); err != nil {
		return err
	}
	if err := r.pc.JoinGroup(r.ifi, allRouters); err != nil {
		return err
	}
	// Neighbour discovery messages must carry hop limit 255 (RFC 4861 6.1.2).
	if err := r.pc.SetMulticastHopLimit(255); err != nil {
		return err
	}
	if err := r.pc.SetHopLimit(255); err != nil {
		return err
	}
	return r.pc.SetMulticastInterface(r.ifi)
}

// hasLinkLocal tells whether IPv6 is on for ifi: without a link-local
// address nothing can be sent or answered there.
func hasLinkLocal(ifi *net.Interface) error {
	addrs, err := ifi.Addrs()
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && ipnet.IP.To4() == nil && ipnet.IP.IsLinkLocalUnicast() {
			return nil
		}
	}
	return fmt.Errorf("%s: %w", ifi.Name, ErrNoLinkLocal)
}

// Advertisement is the router advertisement sent: hop limit 64, no flags,
// router lifetime 0, no timers, and the source link-layer address option.
func Advertisement(mac net.HardwareAddr) []byte {
	body := []byte{64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if len(mac) == 6 {
		body = append(body, append([]byte{1, 1}, mac...)...)
	}
	msg := icmp.Message{Type: ipv6.ICMPTypeRouterAdvertisement, Body: &icmp.RawBody{Data: body}}
	b, _ := msg.Marshal(nil) // the kernel fills in the ICMPv6 checksum
	return b
}

// Serve answers until ctx ends or Close.
func (r *Responder) Serve(ctx context.Context) error {
	go func() { <-ctx.Done(); r.conn.Close() }()
	ra := Advertisement(r.ifi.HardwareAddr)
	allNodes := &net.IPAddr{IP: net.ParseIP("ff02::1"), Zone: r.ifi.Name}
	buf := make([]byte, 1500)
	for {
		n, _, src, err := r.pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("ra: read: %w", err)
		}
		if n < 4 || ipv6.ICMPType(buf[0]) != ipv6.ICMPTypeRouterSolicitation || buf[1] != 0 {
			continue
		}
		if _, err := r.pc.WriteTo(ra, nil, allNodes); err != nil {
			r.log.Warn("could not send a router advertisement", "error", err)
			continue
		}
		r.log.Debug("answered a router solicitation", "from", src)
	}
}

// Close stops the responder; closing twice is not an error.
func (r *Responder) Close() error {
	if err := r.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
