package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/netboot/boot"
	"github.com/slipway/slipway/netboot/limit"
)

// LeaseBook is the domain's address allocator.
type LeaseBook interface {
	Offer(ctx context.Context, subnet netip.Prefix, mac domain.MAC, requested netip.Addr, hostname string) (domain.Grant, error)
	Request(ctx context.Context, subnet netip.Prefix, mac domain.MAC, ip netip.Addr, hostname string, kind domain.RequestKind) (domain.Grant, error)
	Release(ctx context.Context, mac domain.MAC, ip netip.Addr) error
	Decline(ctx context.Context, mac domain.MAC, ip netip.Addr) error
}

// Machines is the domain's view of which MACs it knows.
type Machines interface {
	// Seen is told of every netbooting MAC and discovers the new ones as
	// the discovery policy allows (else a domain.ErrDiscoveryRefused); it
	// returns whether the MAC belonged to a machine before.
	Seen(ctx context.Context, mac domain.MAC, door domain.Door) (known bool, err error)
	// SeenSoon is Seen that may record a new machine after it returns;
	// Settle waits until such a machine of mac's is stored.
	SeenSoon(ctx context.Context, mac domain.MAC, door domain.Door) (known bool, err error)
	Settle(ctx context.Context, mac domain.MAC)
	// BootPlan says whether a MAC's machine installs, keeps its disk, or
	// (unknown, under that policy) gets no answer at all.
	BootPlan(mac domain.MAC) domain.BootPlan
	// RecordFingerprint keeps what a MAC's firmware said of itself.
	RecordFingerprint(mac domain.MAC, fp domain.DHCPFingerprint)
}

// Modes of the server.
const (
	ModeFull  = "full"  // addresses and boot information
	ModeProxy = "proxy" // boot information only, beside another DHCP server (PXE proxyDHCP)
)

// Config says where and how the server answers.
type Config struct {
	Mode       string // ModeFull (default) or ModeProxy
	Interface  string // the LAN interface; empty binds to every interface (tests, demo)
	Port       int    // 67
	ProxyPort  int    // proxy mode: the PXE boot server port on the LAN IP (4011); 0 disables
	ClientPort int    // 68
	ServerIP   netip.Addr
	// Subnets are the networks served: the LAN's first, then any behind
	// DHCP relays. Each request is served from one (see subnetFor).
	Subnets []Subnet
	Boot    boot.Server
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	// Workers is how many requests are handled at once; 0 means 256. They
	// mostly wait for a group commit, and a commit takes as many leases as
	// are waiting: on a disk whose fsync takes 10 ms, 64 workers would cap
	// the server at 6,400 ACKs a second.
	Workers int
	// ClientRate is how many requests a second one MAC is answered (twice
	// that at once); 0 means no limit. Firmware retries a few times a
	// second at most: a client past it is broken or hostile.
	ClientRate float64
}

// Subnet is one network the server gives addresses on, and what its
// clients are told of it.
type Subnet struct {
	Prefix   netip.Prefix
	Router   netip.Addr
	DNS, NTP []netip.Addr
	Domain   string
}

// Server is a bound DHCP server.
type Server struct {
	cfg      Config
	conn     *net.UDPConn
	bootConn *net.UDPConn // proxy mode's port 4011, nil otherwise
	leases   LeaseBook
	machines Machines
	log      *slog.Logger
	metrics  *metrics
	chain    []handler
	// unknownRelays remembers relays already reported as serving a subnet
	// with no pool, so each is logged once, not per packet.
	unknownRelays *onceSet
	perClient     *limit.Rate[domain.MAC]
}

// New binds the DHCP port on the LAN interface.
func New(cfg Config, leases LeaseBook, machines Machines) (*Server, error) {
	if cfg.Port == 0 {
		cfg.Port = dhcpv4.ServerPort
	}
	if cfg.ClientPort == 0 {
		cfg.ClientPort = dhcpv4.ClientPort
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.Subnets) == 0 {
		return nil, errors.New("dhcp: no subnet to serve")
	}
	conn, err := listenOnInterface(cfg.Interface, cfg.Port)
	if err != nil {
		return nil, &config.ListenError{Field: "dhcp.port", Addr: fmt.Sprintf("UDP %d of %s", cfg.Port, cfg.Interface), Err: err,
			Peer: "DHCP server", Or: "set dhcp.mode (proxy beside another DHCP server, or off)"}
	}
	s := &Server{cfg: cfg, conn: conn, leases: leases, machines: machines, log: cfg.Logger.With("part", "dhcp"), metrics: newMetrics(cfg.Metrics),
		unknownRelays: newOnceSet(1024), perClient: limit.NewRate[domain.MAC](cfg.ClientRate, int(2*cfg.ClientRate), maxRateClients)}
	s.chain = []handler{s.checkRequest, s.noteMachine, s.lease, s.networkOptions, s.bootOptions}
	if cfg.Mode == ModeProxy {
		s.chain = []handler{s.checkRequest, s.onlyNetbootClients, s.noteMachine, s.proxyAnswer, s.bootOptions}
		if cfg.ProxyPort != 0 {
			addr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(cfg.ServerIP, uint16(cfg.ProxyPort)))
			if s.bootConn, err = net.ListenUDP("udp4", addr); err != nil {
				conn.Close()
				return nil, fmt.Errorf("dhcp: cannot listen on the PXE boot server port %s: %w (is another proxyDHCP server running?)", addr, err)
			}
		}
	}
	return s, nil
}

// queueLength is each queue's size in packets (see Serve): a whole site
// powering on at once.
const queueLength = 16384

// maxRateClients bounds the MACs whose request rates are remembered.
const maxRateClients = 65536

// Serve answers until ctx ends or the socket is closed.
//
// Under overload it sheds DISCOVERs first: they wait in a queue that drops
// when full, while REQUESTs (which complete a client's exchange) have their
// own queue and are served first. A reader that blocked on a full
// queue would let the kernel drop REQUESTs and DISCOVERs alike.
func (s *Server) Serve(ctx context.Context) error {
	// Both queues hold a site's burst (thousands of machines powered on
	// at once) and ride out a storage stall. They are served in order: a
	// late OFFER is not wasted, since PXE firmware resends its DISCOVER
	// with the same transaction id and takes an answer to either (4, 8,
	// 16 and 32 s apart), whereas dropping the old ones for their age
	// pushed every machine behind them onto that backoff. Under sustained
	// overload the DISCOVER queue fills first and sheds.
	discovers := make(chan inbound, queueLength)
	requests := make(chan inbound, queueLength)
	var workers sync.WaitGroup
	for range s.cfg.Workers {
		workers.Go(func() { s.work(ctx, requests, discovers) })
	}
	stopOnCancel := context.AfterFunc(ctx, func() { s.Close() })
	defer stopOnCancel()
	conns := []*net.UDPConn{s.conn}
	if s.bootConn != nil {
		conns = append(conns, s.bootConn)
	}
	// The queues are closed only once every reader has returned: a packet
	// read at shutdown must not be sent on a closed queue.
	errs := make([]error, len(conns))
	var readers sync.WaitGroup
	for i, conn := range conns {
		readers.Go(func() {
			if errs[i] = s.read(ctx, conn, requests, discovers); errs[i] != nil {
				s.Close() // one socket failing stops the server, not half of it
			}
		})
	}
	readers.Wait()
	close(requests)
	close(discovers)
	workers.Wait()
	return errors.Join(errs...)
}

// read takes packets from one socket and queues them for the workers.
func (s *Server) read(ctx context.Context, conn *net.UDPConn, requests, discovers chan<- inbound) error {
	// Up to the largest UDP datagram: RFC 2131 has clients send at least
	// 576 bytes and allows more (up to the link's MTU, jumbo frames too).
	buf := make([]byte, 65535)
	for {
		n, peer, err := conn.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("dhcp: read from %s: %w", conn.LocalAddr(), err)
		}
		req, err := dhcpv4.FromBytes(slices.Clone(buf[:n]))
		if err != nil {
			s.metrics.dropped.WithLabelValues("malformed").Inc()
			s.log.Debug("dropped a malformed packet", "from", peer, "error", err)
			continue
		}
		kind := req.MessageType()
		queue := requests
		if kind == dhcpv4.MessageTypeDiscover {
			queue = discovers
		}
		select {
		case queue <- inbound{req: req, kind: kind, peer: peer, conn: conn}:
		default:
			s.metrics.dropped.WithLabelValues("overloaded").Inc()
		}
	}
}

type inbound struct {
	req  *dhcpv4.DHCPv4
	kind dhcpv4.MessageType // req's, read once by the reader that queued it
	peer *net.UDPAddr
	conn *net.UDPConn // the socket it came in on, and the reply goes out of
}

// work serves REQUESTs before DISCOVERs.
func (s *Server) work(ctx context.Context, requests, discovers <-chan inbound) {
	for {
		var in inbound
		var ok bool
		select {
		case in, ok = <-requests:
		default:
			select {
			case in, ok = <-requests:
			case in, ok = <-discovers:
			}
		}
		if !ok {
			return
		}
		s.answer(ctx, in)
	}
}

// Close stops the server; closing twice is not an error.
func (s *Server) Close() error {
	if s.bootConn != nil {
		s.bootConn.Close()
	}
	if err := s.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// Addr is the bound socket's address.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

func (s *Server) answer(ctx context.Context, in inbound) {
	reply, dest := s.handle(ctx, in.req, in.kind, in.peer)
	if reply == nil {
		return
	}
	if in.conn == s.bootConn && s.bootConn != nil {
		// PXE 2.1 boot server discovery: the client has its address and
		// waits on the port it asked from (EDK2 uses 4011 itself).
		dest = in.peer
		s.log.Debug("answered a PXE boot server request", "to", in.peer, "mac", in.req.ClientHWAddr)
	}
	if _, err := in.conn.WriteTo(reply.ToBytes(), dest); err != nil {
		s.log.Warn("could not send reply", "to", dest, "type", reply.MessageType(), "error", err)
		return
	}
	s.metrics.replies.inc(reply.MessageType())
}

// exchange is one request travelling down the handler chain.
type exchange struct {
	req    *dhcpv4.DHCPv4
	kind   dhcpv4.MessageType // req's, read once: each read is a lookup and a parse
	reply  *dhcpv4.DHCPv4
	mac    domain.MAC
	subnet Subnet // the network the client is on
}

// handler does one step of building a reply. Returning a nil x.reply drops
// the request; an error drops it too and is logged.
type handler func(ctx context.Context, x *exchange) error

// Handle runs the chain for one request and returns the reply and where to
// send it, or a nil reply when the request gets none.
func (s *Server) Handle(ctx context.Context, req *dhcpv4.DHCPv4, peer net.Addr) (*dhcpv4.DHCPv4, net.Addr) {
	return s.handle(ctx, req, req.MessageType(), peer)
}

// handle is Handle for a request whose message type is already read.
func (s *Server) handle(ctx context.Context, req *dhcpv4.DHCPv4, kind dhcpv4.MessageType, peer net.Addr) (*dhcpv4.DHCPv4, net.Addr) {
	x := &exchange{req: req, kind: kind}
	s.metrics.received.inc(x.kind)
	for _, h := range s.chain {
		if err := h(ctx, x); err != nil {
			s.metrics.dropped.WithLabelValues("error").Inc()
			s.log.Warn("request dropped", "type", x.kind, "mac", req.ClientHWAddr, "error", err)
			return nil, nil
		}
		if x.reply == nil {
			return nil, nil
		}
	}
	return x.reply, s.destination(req, x.reply, peer)
}

// destination follows RFC 2131 4.1: to the relay if there is one, to the
// client's address when it has one, else broadcast. A request that arrives
// from a unicast source without either (simulated nodes on loopback in the
// demo and tests) is answered where it came from.
func (s *Server) destination(req, reply *dhcpv4.DHCPv4, peer net.Addr) net.Addr {
	switch {
	case !req.GatewayIPAddr.IsUnspecified():
		return &net.UDPAddr{IP: req.GatewayIPAddr, Port: s.cfg.Port}
	case !req.ClientIPAddr.IsUnspecified() && reply.MessageType() != dhcpv4.MessageTypeNak:
		return &net.UDPAddr{IP: req.ClientIPAddr, Port: s.cfg.ClientPort}
	}
	if u, ok := peer.(*net.UDPAddr); ok && u.IP != nil && !u.IP.IsUnspecified() && !u.IP.Equal(net.IPv4bcast) {
		return u
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: s.cfg.ClientPort}
}
