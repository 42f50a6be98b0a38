package tftp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path"
	"strings"
	"time"

	"github.com/pin/tftp/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/listener"
	"github.com/slipway/slipway/netboot/limit"
	"github.com/slipway/slipway/netboot/udpbuf"
)

// MaxBlockSize keeps a block, with its IP, UDP and TFTP headers, within a
// 1500-byte Ethernet frame (the library's own cap is 4 bytes too big).
const MaxBlockSize = 1468

// MaxWindowSize is the largest RFC 7440 windowsize granted: blocks sent
// before an ACK is awaited. UEFI firmware asks for a few (OVMF: 4); at 64
// full blocks a window is 94 KB, well within a client's socket buffer, and
// a 50 MB file waits for 560 ACKs instead of 36,000.
const MaxWindowSize = 64

// Rendered serves files rendered per machine, such as GRUB's per-MAC
// config, to the caller that asks; ok is false for names it does not
// render. A caller that is not the machine named gets a
// *domain.CallerRefusedError.
type Rendered interface {
	Lookup(ctx context.Context, name string, from domain.Caller) (content []byte, ok bool, err error)
}

// Config says where the server listens and what it serves.
type Config struct {
	Addr netip.Addr
	Port int
	Root string
	// Assets, if set, is served under "assets/" too (the profiles'
	// kernels and initrds, which HTTP serves from /assets/): for GRUB
	// builds without HTTP, such as Debian's signed one under Secure Boot.
	Assets   string
	Rendered Rendered // optional
	Logger   *slog.Logger
	Metrics  prometheus.Registerer
	// ClientRate is how many requests a second one address is answered
	// (twice that at once), and TransfersPerClient how many files it may
	// fetch at once; 0 means no limit. The box's own address and loopback
	// are not limited.
	ClientRate         float64
	TransfersPerClient int
	// MaxTransfers is how many files are sent at once, to all clients
	// together; a request past it waits for its turn, unanswered, and the
	// client's repeats of it meanwhile are not answered either. One not
	// repeated for turnWait is dropped. 0 means no limit.
	MaxTransfers int
}

// turnWait is how long a waiting request is kept without hearing
// its client ask again. Firmware repeats a request every few seconds
// (EDK2: every 4 s, 6 times) and then gives up: a client silent for longer
// has likely gone, and the turn its request got would go to nobody (the
// transfer then waits out its own timeouts, a turn lost for seconds).
const turnWait = 6 * time.Second

// freshRequest is how lately a waiting request's client must have asked
// for the request to be given a transfer's turn. Firmware asks again each
// time its timeout (EDK2: 4 s) runs out, and after its last try gives up:
// within 3 s of asking it is still listening.
const freshRequest = 3 * time.Second

// maxWaitingRequests bounds the requests waiting for a turn (each holds a
// goroutine and a socket): past it a request is dropped at once.
const maxWaitingRequests = 65536

// Server is a bound read-only TFTP server.
type Server struct {
	rendered Rendered
	srv      *tftp.Server
	conn     *net.UDPConn
	root     *os.Root
	assets   *os.Root // nil when not served
	log      *slog.Logger
	metrics  *metrics
	own      netip.Addr
	rate     *limit.Rate[netip.Addr]
	inFlight *limit.Concurrent[netip.Addr]
	turns    *limit.Turns[netip.AddrPort]
	turnWait time.Duration
	stop     context.Context
	stopped  context.CancelFunc
	// shortage lets one warning a minute through about files that cannot
	// be opened for want of descriptors.
	shortage listener.Throttle
}

// New opens the root and binds the port.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("tftp.root: %w", err)
	}
	var assets *os.Root
	if cfg.Assets != "" {
		if assets, err = os.OpenRoot(cfg.Assets); err != nil {
			root.Close()
			return nil, fmt.Errorf("tftp: the assets directory: %w", err)
		}
	}
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(cfg.Addr, uint16(cfg.Port))))
	if err != nil {
		root.Close()
		if assets != nil {
			assets.Close()
		}
		return nil, &config.ListenError{Field: "tftp.port", Addr: fmt.Sprintf("UDP %s:%d", cfg.Addr, cfg.Port), Err: err, Peer: "TFTP server"}
	}
	// A site's read requests come all at once, and the default buffer
	// dropped thousands in a 10,000-machine storm: each a 4 s wait for
	// its machine's firmware.
	if err := udpbuf.GrowConn(conn); err != nil {
		cfg.Logger.Warn("tftp: the receive buffer stays the kernel's default", "error", err)
	}
	turns := limit.NewTurns[netip.AddrPort](cfg.MaxTransfers, maxWaitingRequests, freshRequest)
	s := &Server{rendered: cfg.Rendered, conn: conn, root: root, assets: assets, log: cfg.Logger.With("part", "tftp"), metrics: newMetrics(cfg.Metrics, turns.Waiting),
		own: cfg.Addr, rate: limit.NewRate[netip.Addr](cfg.ClientRate, int(2*cfg.ClientRate), maxRateClients),
		inFlight: limit.NewConcurrent[netip.Addr](cfg.TransfersPerClient),
		turns:    turns, turnWait: turnWait, shortage: listener.Throttle{Every: time.Minute}}
	s.stop, s.stopped = context.WithCancel(context.Background())
	// No write handler: write requests are refused.
	s.srv = tftp.NewServer(s.read, nil)
	s.srv.SetBlockSize(MaxBlockSize)
	s.srv.SetMaxWindowSize(MaxWindowSize)
	// A block is sent again after 2 s without its ACK (tftpd-hpa: 1 s; a
	// LAN answers in milliseconds), up to 5 times: a transfer to a client
	// that has gone holds its turn for about 15 s, not half a minute.
	s.srv.SetTimeout(2 * time.Second)
	s.srv.SetRetries(5)
	return s, nil
}

// Serve answers until Shutdown.
func (s *Server) Serve() error { return s.srv.Serve(s.conn) }

// shutdownWait bounds how long a stop waits for transfers under way: a
// transfer to a client that has gone waits out its timeouts (half a
// minute), and a stop must not.
const shutdownWait = 3 * time.Second

// Shutdown stops accepting requests, ends the transfers in flight (each
// client hears an ERROR at its next block) and waits for them a little.
func (s *Server) Shutdown() {
	s.stopped() // requests waiting for a turn give up, transfers end
	done := make(chan struct{})
	go func() { s.srv.Shutdown(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownWait):
		s.log.Warn("TFTP transfers still waiting for their clients are left behind at the stop", "waited", shutdownWait)
	}
	// The library closes the socket only if Serve already ran; close it
	// here too, so that a stop right after start frees the port.
	s.conn.Close()
	s.root.Close()
	if s.assets != nil {
		s.assets.Close()
	}
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// ErrOutsideRoot is a name that would lead out of the TFTP root.
var ErrOutsideRoot = errors.New("path leads outside the TFTP root")

// CleanName turns a requested name into a path relative to the root, the
// way firmware writes names: "/pxelinux.0", "\EFI\BOOT\grubx64.efi".
func CleanName(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: empty or NUL in name", fs.ErrInvalid)
	}
	name = strings.ReplaceAll(name, `\`, "/")
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", ErrOutsideRoot
		}
	}
	clean := strings.TrimPrefix(path.Clean("/"+name), "/")
	if clean == "" {
		return "", fmt.Errorf("%w: %q names the root itself", fs.ErrInvalid, name)
	}
	return clean, nil
}

func (s *Server) read(filename string, rf io.ReaderFrom) error {
	peer := ""
	var from domain.Caller
	var port netip.AddrPort
	if t, ok := rf.(tftp.OutgoingTransfer); ok {
		a := t.RemoteAddr()
		peer = a.String()
		port = a.AddrPort()
		from.Addr = port.Addr().Unmap()
	}
	release, err := s.admit(from.Addr)
	if err != nil {
		s.refuse(filename, peer, err)
		return &tftp.Error{Code: tftp.ErrCodeNotDefined, Message: err.Error()}
	}
	defer release()
	endTurn, err := s.takeTurn(filename, peer, port)
	if err != nil {
		return err
	}
	defer endTurn()
	name, err := CleanName(filename)
	if err != nil {
		s.refuse(filename, peer, err)
		return &tftp.Error{Code: tftp.ErrCodeAccessViolation, Message: err.Error()}
	}
	if s.rendered != nil {
		content, ok, err := s.rendered.Lookup(context.Background(), name, from)
		if refused := new(domain.CallerRefusedError); ok && errors.As(err, &refused) {
			s.refuse(filename, peer, err)
			return &tftp.Error{Code: tftp.ErrCodeAccessViolation, Message: "not this machine's file"}
		}
		if ok {
			if err != nil {
				s.refuse(filename, peer, err)
				return notFound(name)
			}
			return s.send(name, peer, bytes.NewReader(content), int64(len(content)), rf)
		}
	}
	f, err := s.open(name)
	if err != nil {
		return s.openFailed(filename, peer, name, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		s.refuse(filename, peer, errors.New("not a regular file"))
		return notFound(name)
	}
	return s.send(name, peer, f, info.Size(), rf)
}

// maxRateClients bounds the addresses whose request rates are remembered.
const maxRateClients = 65536

// admit lets a request from client start a transfer, within its rate and
// its transfers at once; release ends the transfer's place.
func (s *Server) admit(client netip.Addr) (release func(), err error) {
	if client.IsLoopback() || client == s.own {
		return func() {}, nil
	}
	if !s.rate.Allow(client) {
		return nil, errors.New("too many requests from this address: slow down")
	}
	release, ok := s.inFlight.Acquire(client)
	if !ok {
		return nil, errors.New("too many transfers at once from this address")
	}
	return release, nil
}

// takeTurn waits for one of the transfers at once (MaxTransfers). A
// request that finds none in time, or repeats one that waits, is left
// unanswered: to the client it is a lost packet, and it asks again.
func (s *Server) takeTurn(filename, peer string, client netip.AddrPort) (release func(), err error) {
	release, err = s.turns.Take(s.stop, client, s.turnWait)
	switch {
	case errors.Is(err, limit.ErrRepeated):
		s.metrics.transfers.WithLabelValues("repeat-while-waiting").Inc()
		return nil, tftp.ErrUnanswered
	case err != nil:
		s.metrics.transfers.WithLabelValues("no-turn").Inc()
		s.log.Debug("request left unanswered: no transfer free in time", "file", filename, "client", peer, "waited", s.turnWait)
		return nil, tftp.ErrUnanswered
	}
	return release, nil
}

// open opens a file of the root, or of the assets for "assets/…".
func (s *Server) open(name string) (*os.File, error) {
	if rest, ok := strings.CutPrefix(name, "assets/"); ok && s.assets != nil {
		return s.assets.Open(rest)
	}
	return s.root.Open(name)
}

func (s *Server) send(name, peer string, r io.Reader, size int64, rf io.ReaderFrom) error {
	if t, ok := rf.(tftp.OutgoingTransfer); ok {
		t.SetSize(size)
	}
	start := time.Now()
	// Blocks are read 1468 bytes at a time: a buffer makes that one read
	// of the file per eleven blocks (a read per block was 4 % of the CPU
	// of a booting site).
	n, err := rf.ReadFrom(stoppable{bufio.NewReaderSize(r, 16<<10), s.stop})
	var ended *tftp.PeerError
	if errors.As(err, &ended) {
		// The client ended it with an ERROR of its own, which is not
		// answered. Code 8 right after the options is how firmware (OVMF)
		// asks a file's size before it fetches it.
		s.metrics.transfers.WithLabelValues("ended-by-client").Inc()
		s.log.Debug("the client ended the transfer", "file", name, "client", peer, "sent", n, "code", ended.Code, "message", ended.Message)
		return err
	}
	if err != nil {
		s.metrics.transfers.WithLabelValues("failed").Inc()
		s.log.Warn("transfer failed", "file", name, "client", peer, "sent", n, "error", err)
		return err
	}
	s.metrics.transfers.WithLabelValues("ok").Inc()
	s.metrics.bytes.Add(float64(n))
	s.log.Info("file sent", "file", name, "client", peer, "bytes", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// stoppable is a file being sent that ends when the server stops.
type stoppable struct {
	io.Reader
	stop context.Context
}

func (r stoppable) Read(p []byte) (int, error) {
	if r.stop.Err() != nil {
		return 0, &tftp.Error{Code: tftp.ErrCodeNotDefined, Message: "the server is stopping"}
	}
	return r.Reader.Read(p)
}

// openFailed answers a file that could not be opened: not found, or, when
// Slipway is short of descriptors (a site booting past the open files
// limit), nothing at all: the firmware asks again after its timeout (EDK2:
// 4 s, six times), where "not found" would end its network boot.
func (s *Server) openFailed(filename, peer, name string, err error) error {
	if listener.Shortage(err) {
		s.metrics.transfers.WithLabelValues("unanswered-short-of-resources").Inc()
		if warn, n := s.shortage.Note(time.Now()); warn {
			s.log.Warn("TFTP requests left unanswered: a file cannot be opened now; the firmware asks again", "file", filename, "client", peer,
				"error", err, "since_last_warning", n, "fix", "raise LimitNOFILE= in the service unit")
		}
		return tftp.ErrUnanswered
	}
	s.refuse(filename, peer, err)
	return notFound(name)
}

// notFound is RFC 1350's "File not found" (code 1).
func notFound(name string) error {
	return &tftp.Error{Code: tftp.ErrCodeFileNotFound, Message: fmt.Sprintf("%s: %v", name, fs.ErrNotExist)}
}

func (s *Server) refuse(filename, peer string, why error) {
	s.metrics.transfers.WithLabelValues("refused").Inc()
	s.log.Info("request refused", "file", filename, "client", peer, "reason", why)
}

type metrics struct {
	transfers *prometheus.CounterVec
	bytes     prometheus.Counter
}

// newMetrics registers the server's metrics; waiting is the length of the
// queue for a transfer's turn.
func newMetrics(reg prometheus.Registerer, waiting func() int) *metrics {
	m := &metrics{
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_tftp_transfers_total", Help: "TFTP read requests, by outcome (ok, failed, refused, ended-by-client, no-turn: dropped after waiting tftp.max_transfers' turn, repeat-while-waiting).",
		}, []string{"outcome"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slipway_tftp_sent_bytes_total", Help: "Bytes sent by completed TFTP transfers.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.transfers, m.bytes, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "slipway_tftp_requests_waiting", Help: "TFTP requests waiting for a transfer's turn (tftp.max_transfers).",
		}, func() float64 { return float64(waiting()) }))
	}
	return m
}
