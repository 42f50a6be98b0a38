package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config says where the HTTP server listens and what it serves from.
type Config struct {
	Addr    netip.Addr
	Port    int
	Logger  *slog.Logger
	Version string
	// Metrics is where request metrics are registered and what /metrics serves.
	Metrics *prometheus.Registry
	// Ready answers /readyz: nil means ready, an error says what is not.
	Ready func(ctx context.Context) error
	// Machines serves the read side of the native machine API.
	Machines MachineReader
	// BootRoot, if set, is served read-only under /boot/ (the TFTP root),
	// AssetsRoot under /assets/ (kernels, initrds, images).
	BootRoot   *os.Root
	AssetsRoot *os.Root
	// BootConfigs renders /boot.ipxe and per-MAC files under /boot/.
	BootConfigs BootConfigs
	// CloudInit serves /cloud-init/*; Onboarding /heartbeat and /clients.
	CloudInit  CloudInit
	Onboarding Onboarding
	// Neighbors places requests that do not name their MAC.
	Neighbors Neighbors
	// ServerURL is how nodes reach this server, when a request does not say.
	ServerURL string
	// Auth says who may use /api/v1 (all of it but /login and /version).
	Auth Auth
	// Fleet, Leases and BMCs feed /api/v1/overview; Events streams the
	// bus to the console (/api/v1/events).
	Fleet  FleetStats
	Leases LeaseStats
	Events Events
	// LeaseList serves /api/v1/leases; Settings the effective config, as
	// YAML with secrets redacted, at /api/v1/settings.
	LeaseList Leases
	Settings  func() (string, error)
	// BMCs serves /api/v1/bmcs and machine provisioning.
	BMCs BMCs
	// Firmware serves /api/v1/firmware and updates; FirmwareRoot holds the
	// images BMCs fetch under /firmware/. Tasks serves /api/v1/tasks.
	Firmware     Firmware
	FirmwareRoot *os.Root
	Tasks        Tasks
}

// bodyLimit bounds request bodies, but for firmware uploads (streamed).
const bodyLimit = 4 << 20

// Server is the bound HTTP server.
type Server struct {
	app  *fiber.App
	ln   net.Listener
	log  *slog.Logger
	done chan struct{} // closed by Shutdown: long-lived streams end
}

// New binds the HTTP port and builds the routes. Nothing is served until Serve.
func New(cfg Config) (*Server, error) { return newServer(cfg, nil) }

// newServer is New with extra routes mounted before the catch-all, for tests.
func newServer(cfg Config, extra func(fiber.Router)) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	hostPort := net.JoinHostPort(cfg.Addr.String(), strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", hostPort)
	if err != nil {
		return nil, fmt.Errorf("http.port: cannot listen on %s: %w (is another program using the port? change http.port or stop it)", hostPort, err)
	}
	s := &Server{ln: ln, log: cfg.Logger, done: make(chan struct{})}
	s.app = fiber.New(fiber.Config{
		DisableStartupMessage: true,
		AppName:               "slipway",
		ReadTimeout:           30 * time.Second,
		IdleTimeout:           60 * time.Second,
		ErrorHandler:          s.jsonError,
		BodyLimit:             bodyLimit,
		StreamRequestBody:     true,
		// Without it, fiber's strings (a path parameter, a query value, the
		// method) point into buffers it reuses for the next request: a
		// machine id kept as a map key, or a metric label, changed under
		// the code that kept it.
		Immutable: true,
	})
	s.app.Use(recover.New())
	s.app.Use(limitBodies(bodyLimit))
	if cfg.Logger.Enabled(context.Background(), slog.LevelDebug) {
		s.app.Use(accessLog(s.log))
	}
	if cfg.Metrics != nil {
		s.app.Use(requestMetrics(cfg.Metrics))
	}
	s.routes(cfg, extra)
	return s, nil
}

func (s *Server) routes(cfg Config, extra func(fiber.Router)) {
	s.app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	s.app.Get("/readyz", func(c *fiber.Ctx) error {
		if cfg.Ready != nil {
			if err := cfg.Ready(c.UserContext()); err != nil {
				return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "not ready", "error": err.Error()})
			}
		}
		return c.JSON(fiber.Map{"status": "ready"})
	})
	if cfg.Metrics != nil {
		s.app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{})))
	}
	bootRoutes(s.app, cfg)
	onboardingRoutes(s.app, cfg)
	api := s.app.Group("/api/v1", authenticate(cfg.Auth, "/api/v1/login", "/api/v1/version"))
	api.Get("/version", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"version": cfg.Version}) })
	if cfg.Auth != nil {
		authRoutes(api, cfg.Auth)
	}
	if cfg.Machines != nil {
		machineRoutes(api, cfg.Machines)
	}
	if cfg.Onboarding != nil {
		// An operator clears a machine's heartbeats before a reinstall.
		api.Delete("/machines/:id/heartbeats", requireRole(RoleOperator), func(c *fiber.Ctx) error {
			n, err := cfg.Onboarding.ResetOnboarding(c.UserContext(), c.Params("id"))
			if err != nil {
				return actionError(err)
			}
			return c.JSON(fiber.Map{"machine_id": c.Params("id"), "heartbeats_forgotten": n})
		})
	}
	if cfg.BMCs != nil {
		bmcRoutes(api, cfg.BMCs)
	}
	if cfg.Firmware != nil {
		firmwareRoutes(api, cfg.Firmware)
	}
	if cfg.FirmwareRoot != nil {
		s.app.Get("/firmware/*", files(cfg.FirmwareRoot, "/firmware/"))
	}
	if cfg.Tasks != nil {
		taskRoutes(api, cfg.Tasks)
	}
	if cfg.Fleet != nil {
		api.Get("/overview", overview(cfg.Fleet, cfg.BMCs, cfg.Leases))
	}
	if cfg.Events != nil {
		api.Get("/events", liveEvents(cfg.Events, s.done))
	}
	if cfg.LeaseList != nil {
		leaseRoutes(api, cfg.LeaseList)
	}
	if cfg.Settings != nil {
		settingsRoute(api, cfg.Settings)
	}
	consoleRoutes(s.app)
	if extra != nil {
		extra(s.app)
	}
	s.app.Use(func(c *fiber.Ctx) error {
		return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", c.Method(), c.Path()))
	})
}

// jsonError is the one place errors become HTTP answers.
func (s *Server) jsonError(c *fiber.Ctx, err error) error {
	code := fiber.StatusInternalServerError
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code = fe.Code
	}
	if code >= 500 {
		s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "error", err)
	}
	return c.Status(code).JSON(fiber.Map{"error": err.Error()})
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve answers requests until Shutdown.
func (s *Server) Serve() error {
	if err := s.app.Listener(s.ln); err != nil {
		return fmt.Errorf("http: %w", err)
	}
	return nil
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
			"status", c.Response().StatusCode(), "bytes", c.Response().Header.ContentLength(), "took", time.Since(start).Round(time.Microsecond))
		return err
	}
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
		code := c.Response().StatusCode()
		var fe *fiber.Error
		if errors.As(err, &fe) {
			code = fe.Code
		} else if err != nil {
			code = fiber.StatusInternalServerError
		}
		method, route := c.Method(), c.Route().Path
		if code == fiber.StatusNotFound {
			route = "unmatched"
		}
		requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
		duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		return err
	}
}
