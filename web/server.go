package web

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/appliance/listener"
)

// Config says where the HTTP server listens and what it answers besides
// its mounts: probes and metrics.
type Config struct {
	Addr netip.Addr
	Port int
	// PortField names the port's setting in errors (default http.port).
	PortField string
	Logger    *slog.Logger
	// Metrics is where request metrics are registered and what /metrics serves.
	Metrics *prometheus.Registry
	// Ready answers /readyz: nil means ready, an error says what is not.
	Ready func(ctx context.Context) error
	// ReadyDetail, if set, adds its fields to /readyz's answer.
	ReadyDetail func() map[string]any
	// MaxConnections bounds the connections open at once (0: 16384), and
	// MaxConnectionsPerAddress those from one client address (0: 256): a
	// host on the LAN holding connections open must not starve the rest.
	MaxConnections           int
	MaxConnectionsPerAddress int
	// TLS, if set, serves the same routes over TLS on TLSPort as well
	// (TLSPortField names its setting in errors); with TLSPort 0, Port
	// itself speaks TLS, and nothing plain is served.
	TLS          *tls.Config
	TLSPort      int
	TLSPortField string
	// TLSOnly are the path prefixes plain HTTP does not serve while TLS is
	// on (the console; the APIs, if the operator says so): a GET or HEAD
	// is redirected to the same path over TLS, anything else refused.
	TLSOnly []string
}

// bodyLimit bounds request bodies, but for the paths mounts stream
// (firmware uploads).
const bodyLimit = 4 << 20

// Server is the bound HTTP server.
type Server struct {
	app   *fiber.App
	ln    net.Listener
	tlsLn net.Listener // nil without TLS
	log   *slog.Logger
	done  chan struct{} // closed by Shutdown: long-lived streams end
	// failures logs what failed on the server's side, every mount's.
	failures *failureLog
}

// idleTimeout closes a kept connection nobody uses: iPXE never closes its
// own (see the server's settings).
const idleTimeout = 15 * time.Second

// defaultMaxConnections holds a site of ten thousand machines booting at
// once, each with its iPXE connection and its installer's requests.
const defaultMaxConnections = 16384

// New binds the HTTP port and builds the routes: the probes, then each
// mount in order. Nothing is served until Serve.
func New(cfg Config, mounts ...Mount) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for _, m := range mounts {
		if m.Prefix == "" && (m.Auth != nil || m.Errors != nil) {
			return nil, fmt.Errorf("web: mount %s: a mount at the root cannot have its own authentication or error shape; give it a prefix", m.Name)
		}
	}
	hostPort := net.JoinHostPort(cfg.Addr.String(), strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", hostPort)
	if err != nil {
		return nil, &config.ListenError{Field: cmp.Or(cfg.PortField, "http.port"), Addr: hostPort, Err: err, Peer: "program"}
	}
	maxConns, perAddress := cmp.Or(cfg.MaxConnections, defaultMaxConnections), cmp.Or(cfg.MaxConnectionsPerAddress, 256)
	slots := newConnectionSlots(maxConns, cfg.Logger)
	ln = boundConnections(listener.Patient(ln, "http", cfg.Logger), perAddress, slots)
	s := &Server{ln: ln, log: cfg.Logger, done: make(chan struct{}), failures: newFailureLog()}
	if cfg.TLS != nil && cfg.TLSPort == 0 {
		s.ln = tls.NewListener(ln, cfg.TLS)
	}
	if cfg.TLS != nil && cfg.TLSPort != 0 {
		tlsHostPort := net.JoinHostPort(cfg.Addr.String(), strconv.Itoa(cfg.TLSPort))
		tcp, err := net.Listen("tcp", tlsHostPort)
		if err != nil {
			ln.Close()
			return nil, &config.ListenError{Field: cmp.Or(cfg.TLSPortField, "https.port"), Addr: tlsHostPort, Err: err, Peer: "program"}
		}
		s.tlsLn = tls.NewListener(boundConnections(listener.Patient(tcp, "https", cfg.Logger), perAddress, slots), cfg.TLS)
	}
	s.app = fiber.New(fiber.Config{
		DisableStartupMessage: true,
		AppName:               "slipway",
		ReadTimeout:           30 * time.Second,
		// iPXE keeps its connection after the initrd and never closes it:
		// the kernel it boots knows nothing of it. Each booted machine
		// leaves one behind until this timeout, and a site booting at
		// once would fill max_connections with them.
		IdleTimeout: idleTimeout,
		// The listeners keep to max_connections, and a connection past it
		// waits to be accepted; fasthttp's own bound, which would answer
		// it 503 at once, only has to stay out of the way (a closed
		// connection's worker is let go a moment after its place).
		Concurrency:       2 * maxConns,
		ErrorHandler:      s.jsonError,
		BodyLimit:         bodyLimit,
		StreamRequestBody: true,
		// Without it, fiber's strings (a path parameter, a query value, the
		// method) point into buffers it reuses for the next request: a
		// machine id kept as a map key, or a metric label, changed under
		// the code that kept it.
		Immutable: true,
	})
	s.app.Use(recover.New())
	s.app.Use(limitBodies(bodyLimit, streamed(mounts)))
	if cfg.Logger.Enabled(context.Background(), slog.LevelDebug) {
		s.app.Use(accessLog(s.log))
	}
	if cfg.Metrics != nil {
		s.app.Use(requestMetrics(cfg.Metrics))
	}
	if s.tlsLn != nil && len(cfg.TLSOnly) > 0 {
		s.app.Use(overTLSOnly(cfg.TLSOnly, cfg.TLSPort, cfg.Addr))
	}
	s.probes(cfg)
	for _, m := range mounts {
		s.mount(m)
	}
	s.app.Use(func(c *fiber.Ctx) error {
		return &NoEndpointError{Method: c.Method(), Path: c.Path()}
	})
	return s, nil
}

func (s *Server) probes(cfg Config) {
	s.app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	s.app.Get("/readyz", func(c *fiber.Ctx) error {
		body := fiber.Map{"status": "ready"}
		if cfg.ReadyDetail != nil {
			maps.Copy(body, cfg.ReadyDetail())
		}
		if cfg.Ready != nil {
			if err := cfg.Ready(c.UserContext()); err != nil {
				body["status"], body["error"] = "not ready", err.Error()
				return c.Status(fiber.StatusServiceUnavailable).JSON(body)
			}
		}
		return c.JSON(body)
	})
	if cfg.Metrics != nil {
		s.app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{})))
	}
}

// mount adds m's routes under its prefix, behind its error shape and its
// authentication, and answers its unknown paths in its shape.
func (s *Server) mount(m Mount) {
	if m.Prefix == "" {
		m.Routes(s.app, s.done)
		return
	}
	r := s.app.Group(m.Prefix, within(m.Prefix, shapeErrors(m.Errors, s.log.With("mount", m.Name), s.failures)))
	if m.Auth != nil {
		r.Use(within(m.Prefix, m.Auth))
	}
	m.Routes(r, s.done)
	r.Use(within(m.Prefix, func(c *fiber.Ctx) error {
		return &NoEndpointError{Method: c.Method(), Path: c.Path()}
	}))
}

// streamed are the paths whose request bodies may exceed the body limit.
func streamed(mounts []Mount) []string {
	var out []string
	for _, m := range mounts {
		for _, p := range m.StreamedBodies {
			out = append(out, m.Prefix+p)
		}
	}
	return out
}

// jsonError answers what no mount shaped: unknown paths and errors of
// root mounts.
func (s *Server) jsonError(c *fiber.Ctx, err error) error {
	code := StatusOf(err)
	s.failures.failed(s.log, code, err, "method", c.Method(), "path", c.Path())
	tellToRetry(c, err)
	return JSONError(c, code, err)
}

// Route is one method and path the server answers.
type Route struct{ Method, Path string }

// Routes lists every route but HEAD (which fiber adds for each GET), so
// that a test can walk them all.
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.app.GetRoutes(true) {
		if r.Method != fiber.MethodHead {
			out = append(out, Route{Method: r.Method, Path: r.Path})
		}
	}
	return out
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// TLSAddr is the address it listens on with TLS; nil without TLS.
func (s *Server) TLSAddr() net.Addr {
	if s.tlsLn == nil {
		return nil
	}
	return s.tlsLn.Addr()
}

// Serve answers requests, on both listeners, until Shutdown.
func (s *Server) Serve() error {
	errs := make(chan error, 2)
	serve := func(name string, ln net.Listener) {
		if err := s.app.Listener(ln); err != nil {
			errs <- fmt.Errorf("%s: %w", name, err)
			return
		}
		errs <- nil
	}
	n := 1
	if s.tlsLn != nil {
		n++
		go serve("https", s.tlsLn)
	}
	go serve("http", s.ln)
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
			// One listener failing stops the other: the caller sees the
			// part as stopped.
			_ = s.app.Shutdown()
		}
	}
	return first
}

// Shutdown stops accepting connections and waits, until ctx ends, for
// requests in flight to finish.
func (s *Server) Shutdown(ctx context.Context) error {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	if err := s.app.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("http: shutdown: %w", err)
	}
	// fasthttp closes only a listener it already serves: close it here too,
	// so that a Serve that had not started yet returns instead of serving on.
	_ = s.ln.Close()
	if s.tlsLn != nil {
		_ = s.tlsLn.Close()
	}
	return nil
}

// accessLog logs every request at debug level, for following a netboot
// step by step (log.level: debug).
func accessLog(log *slog.Logger) fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		// The header's length, not len(Body()): Body() would read a streamed
		// file (a kernel, an image) into memory just to count it.
		log.Debug("http", "client", c.IP(), "method", c.Method(), "path", c.OriginalURL(),
			"status", answered(c, err), "bytes", c.Response().Header.ContentLength(), "took", time.Since(start).Round(time.Microsecond))
		return err
	}
}

// answered is the status a request is answered with once next has
// returned err: the error's, which the error handler writes after the
// middleware, over whatever status the handler had set.
func answered(c *fiber.Ctx, err error) int {
	if err != nil {
		return StatusOf(err)
	}
	return c.Response().StatusCode()
}

// requestMetrics counts requests and times them by route pattern, never by
// raw path, so that per-MAC URLs do not explode the label set.
func requestMetrics(reg prometheus.Registerer) fiber.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "slipway_http_requests_total",
		Help: "HTTP requests answered, by method, route and status code.",
	}, []string{"method", "route", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "slipway_http_request_duration_seconds",
		Help:    "Time to answer HTTP requests, by method and route.",
		Buckets: prometheus.DefBuckets,
	}, []string{"method", "route"})
	reg.MustRegister(requests, duration)
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		code := answered(c, err)
		method, route := c.Method(), c.Route().Path
		if code == fiber.StatusNotFound {
			route = "unmatched"
		}
		requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
		duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		return err
	}
}

// limitBodies refuses request bodies over limit (and bodies of unknown
// length) except on the paths mounts stream (uploads): the server reads
// large bodies as streams so that uploads need no memory, and no other
// handler may then read one whole.
func limitBodies(limit int, streamed []string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		n := c.Request().Header.ContentLength()
		if slices.Contains(streamed, c.Path()) || n == 0 || n == -2 {
			return c.Next()
		}
		if n == -1 {
			return fiber.NewError(fiber.StatusLengthRequired, "send a Content-Length")
		}
		if n > limit {
			return fiber.NewError(fiber.StatusRequestEntityTooLarge, fmt.Sprintf("the body is %d bytes; this endpoint takes at most %d", n, limit))
		}
		return c.Next()
	}
}
