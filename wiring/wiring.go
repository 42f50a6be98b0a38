package wiring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/slipway/slipway/appliance/auth"
	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/appliance/deploy"
	"github.com/slipway/slipway/appliance/design"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/firmware"
	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/appliance/release"
	"github.com/slipway/slipway/appliance/swdeploy"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/appliance/tlscert"
	"github.com/slipway/slipway/appliance/trays"
	"github.com/slipway/slipway/broker"
	"github.com/slipway/slipway/broker/bridge"
	"github.com/slipway/slipway/broker/relay"
	"github.com/slipway/slipway/netboot/bootcfg"
	"github.com/slipway/slipway/netboot/cloudinit"
	"github.com/slipway/slipway/netboot/dhcp"
	"github.com/slipway/slipway/netboot/neighbor"
	"github.com/slipway/slipway/netboot/ra"
	"github.com/slipway/slipway/netboot/tftp"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/web"
	"github.com/slipway/slipway/web/console"
	"github.com/slipway/slipway/web/drydock"
	"github.com/slipway/slipway/web/native"
	"github.com/slipway/slipway/web/nico"
	"github.com/slipway/slipway/web/nodes"
)

// Options are what the command line adds to the configuration.
type Options struct {
	Version string
	Logger  *slog.Logger
	// OnReady, if set, is called once every listener serves.
	OnReady func(URLs)
	// OnFirstAdmin, if set, hears the one-time admin password a first
	// start without any configured admin makes (it is logged as well).
	OnFirstAdmin func(password string)
}

// URLs are where a running appliance can be reached.
type URLs struct {
	HTTP string // http://10.88.0.1:80
	// HTTPS is the console and API over TLS (empty when off), and
	// Fingerprint its certificate's SHA-256.
	HTTPS, Fingerprint string
	MQTT               string // mqtt://10.88.0.1:1883
	WebSocket          string // ws://10.88.0.1:8083/mqtt, empty when disabled
	USM                string // http://10.88.0.1:5497, empty when disabled
}

// Appliance is one running Slipway.
type Appliance struct {
	cfg   *config.Config
	opts  Options
	log   *slog.Logger
	ready atomic.Bool
	// web is the HTTP server once started, for tests that walk its routes.
	web atomic.Pointer[web.Server]
}

// New prepares an appliance for cfg, which must have passed Validate.
func New(cfg *config.Config, opts Options) *Appliance {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Appliance{cfg: cfg, opts: opts, log: opts.Logger}
}

// parts are the started pieces, kept so that stop can undo start.
type parts struct {
	db         *store.Store
	broker     *broker.Broker
	web        *web.Server
	bootRoot   *os.Root
	assetsRoot *os.Root
	commit     *store.Committer
	inventory  *domain.Inventory
	bootcfg    *bootcfg.Renderer
	tftp       *tftp.Server
	dhcp       *dhcp.Server
	ra         *ra.Responder
	outbox     *outbox.Outbox
	feed       *outbox.Feed
	relay      *relay.Relay
	bridge     *bridge.Bridge // nil unless bridge.url is set
	bmcs       *bmc.Manager
	auth       *auth.Service
	// leases is the DHCP lease book, once netboot started it in full mode.
	leases   atomic.Pointer[domain.LeaseBook]
	tasks    *task.Engine
	updater  *firmware.Updater
	firmware firmwareService
	// firmwareRoot holds the images BMCs fetch over HTTP.
	firmwareRoot *os.Root
	designsRoot  *os.Root
	designs      *design.Library
	deploy       *deploy.Service
	releases     *release.Library
	swdeploy     *swdeploy.Service
	usm          *web.Server    // USM's API, on its own port
	fingerprint  string         // the console's TLS certificate's, "" without TLS
	cert         *tlscert.Cert  // nil when nothing is served over TLS
	loops        sync.WaitGroup // every serve loop
	errs         chan error     // the first part that stops on its own reports here
	log          *slog.Logger
	serveCtx     context.Context
	stopAll      context.CancelFunc
}

// Run starts every part, serves until ctx is cancelled or a part fails, then
// stops them all. It returns nil after a clean stop on cancellation.
func (a *Appliance) Run(ctx context.Context) error {
	if err := a.prepareLAN(); err != nil {
		return err
	}
	p := &parts{errs: make(chan error, 1), log: a.log}
	p.serveCtx, p.stopAll = context.WithCancel(context.Background())
	startErr := a.start(ctx, p)
	if startErr == nil {
		a.ready.Store(true)
		a.announce(p)
		select {
		case <-ctx.Done():
			a.log.Info("stopping", "reason", context.Cause(ctx))
		case startErr = <-p.errs:
			a.log.Error("a part stopped unexpectedly; stopping the rest", "error", startErr)
		}
	}
	a.ready.Store(false)
	return errors.Join(startErr, a.stop(p))
}

// prepareLAN names the LAN interface (lan.interface may be a MAC address
// or "auto"), configures it if lan.configure says so, and checks that it
// holds lan.address.
func (a *Appliance) prepareLAN() error {
	nics, err := hostNICs()
	if err != nil {
		return err
	}
	iface, err := resolveInterface(a.cfg.LAN.Interface, nics)
	if err != nil {
		return err
	}
	if iface != a.cfg.LAN.Interface {
		a.log.Info("LAN interface chosen", "interface", iface, "by", a.cfg.LAN.Interface)
		a.cfg.LAN.Interface = iface
	}
	if a.cfg.LAN.Configure {
		if err := configureLAN(iface, a.cfg.LANPrefix()); err != nil {
			return err
		}
	}
	return checkLAN(iface, a.cfg.LANPrefix())
}

func (a *Appliance) start(ctx context.Context, p *parts) error {
	a.warnOfOpenFilesLimit()
	a.limitMemory()
	for _, dir := range []string{a.cfg.DataDir, a.cfg.TFTPRoot(), a.cfg.AssetsDir(), a.cfg.TemplatesDir()} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("data_dir: %w (Slipway keeps its database and files there: it must be writable)", err)
		}
	}
	var err error
	if p.db, err = store.Open(ctx, a.cfg.DBPath(), store.Options{BusyTimeout: a.cfg.Store.BusyTimeout, Sync: a.cfg.Store.Sync}); err != nil {
		return err
	}
	created, updated, err := domain.SyncListed(ctx, p.db, a.cfg.ListedMachines(), a.log)
	if err != nil {
		return err
	}
	a.log.Info("inventory loaded", "machines_created", created, "machines_updated", updated)

	lanIP := a.cfg.LANIP()
	reg := a.metrics()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "slipway_store_leases_unapplied",
		Help: "DHCP leases in the lease journal and not yet in the leases table; growing means the store cannot write.",
	}, func() float64 { return float64(p.db.LeasesUnapplied()) }))
	p.broker, err = broker.New(broker.Config{Addr: lanIP, Port: a.cfg.MQTT.Port, WebSocketPort: a.cfg.MQTT.WebSocketPort, WebSocketOrigins: a.cfg.MQTT.WebSocketOrigins,
		Access: mqttAccess(a.cfg.MQTT), Logger: a.log, Limits: broker.Limits{
			MaxPacketBytes: uint32(a.cfg.MQTT.MaxPacketKiB) << 10, MaxConnections: a.cfg.MQTT.MaxConnections,
			ConnectTimeout: a.cfg.MQTT.ConnectTimeout, MaxQueuedPerClient: int32(a.cfg.MQTT.MaxQueuedPerClient)}})
	if err != nil {
		return err
	}
	if p.bootRoot, err = os.OpenRoot(a.cfg.TFTPRoot()); err != nil {
		return fmt.Errorf("tftp.root: %w", err)
	}
	if p.assetsRoot, err = os.OpenRoot(a.cfg.AssetsDir()); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	// Small, frequent writes (leases, discovered machines, heartbeats) share commits.
	p.commit = p.db.NewCommitter(store.WritesPerCommit)
	p.outbox = outbox.New(outbox.Config{DB: p.db, Commit: p.commit, Log: a.log.With("part", "outbox")})
	toBroker, err := p.outbox.Open(ctx, relay.ConsumerName)
	if err != nil {
		return err
	}
	p.relay = relay.New(toBroker, p.broker, a.log.With("part", "events"), reg)
	// The console's live view reads the outbox too, with a cursor of its own.
	if p.feed, err = p.outbox.NewFeed(ctx, "console"); err != nil {
		return err
	}
	if p.inventory, err = domain.NewInventory(ctx, domain.InventoryConfig{DB: p.db, Commit: p.commit, Log: a.log,
		Announce: broker.Events{}, Timeouts: a.cfg.Lifecycle.Timeouts,
		UnknownMachines: domain.UnknownPolicy(a.cfg.UnknownMachinePolicy()), HeartbeatsKept: a.cfg.Lifecycle.HeartbeatsPerMachine,
		Discovery: a.cfg.Discovery.Policy()}); err != nil {
		return err
	}
	callers, err := a.nodeCallers(p, reg)
	if err != nil {
		return err
	}
	if err := a.startAuth(ctx, p); err != nil {
		return err
	}
	serverURL := "http://" + netip.AddrPortFrom(lanIP, uint16(a.cfg.HTTP.Port)).String()
	if err := a.startBMCs(ctx, p, reg, serverURL); err != nil {
		return err
	}
	// Commands from upstream, if allowed, act through the BMCs and the inventory.
	if err := a.startBridge(ctx, p, reg); err != nil {
		return err
	}
	// One engine runs every kind of task; each kind registers with it.
	p.tasks = task.NewEngine(task.EngineConfig{DB: p.db, Commit: p.commit, Announce: broker.Events{}, Log: a.log})
	if err := a.startFirmware(p, serverURL); err != nil {
		return err
	}
	if err := a.startDeploy(p, serverURL); err != nil {
		return err
	}
	if p.cert, err = a.certificate(); err != nil {
		return err
	}
	if err := a.startReleases(p, lanIP); err != nil {
		return err
	}
	if p.bootcfg, err = bootcfg.New(p.inventory, bootProfiles(a.cfg), a.cfg.DefaultProfile, lanIP, a.cfg.HTTP.Port); err != nil {
		return err
	}
	p.bootcfg.WithMoreProfiles(releaseProfiles(p.releases)).WithTokens(callers.Token).WithCallers(callers)
	fleet, tasks := domain.Fleet{DB: p.db}, taskService{task.Reader{DB: p.db}, p.tasks}
	// The mounted APIs: a dialect adds its package and a line here.
	mounts := []web.Mount{
		nodes.New(nodes.Config{Logger: a.log, BootRoot: p.bootRoot, AssetsRoot: p.assetsRoot, FirmwareRoot: p.firmwareRoot,
			BootConfigs: p.bootcfg, CloudInit: cloudInit(a.cfg, p.inventory, p.deploy, callers.Token, a.log), Onboarding: p.inventory,
			Neighbors: neighbor.Table{}, Callers: callers, ServerURL: serverURL}),
		native.New(native.Services{Version: a.opts.Version, Fingerprint: func() string { return p.fingerprint }, Auth: p.auth, Machines: fleet, Onboarding: p.inventory,
			BMCs: p.bmcs, Firmware: p.firmware, Tasks: tasks, Fleet: fleet, Leases: leaseStats{&p.leases},
			Events: p.feed, LeaseList: fleet, Settings: a.cfg.Redacted, Designs: p.designs, Deployments: p.deploy,
			Releases: releaseViews{p.releases, p.swdeploy}, Bridge: p.bridgeStatus, Policy: p.inventory}),
		console.New(),
	}
	mounts = append(mounts, drydock.New(drydock.Services{Auth: p.auth, Deploy: p.deploy, Tasks: tasks, Machines: fleet,
		BMCs: p.bmcs, Health: p.db.Ping})...)
	mounts = append(mounts, nico.New(nico.Services{Auth: p.auth,
		Trays: &trays.Service{Machines: fleet, BMCs: p.bmcs, Firmware: p.firmware, SiteID: a.cfg.NICo.SiteID,
			Parallel: a.cfg.NICo.ParallelUpdates, DPUOSVersion: a.cfg.NICo.DPU.OSVersion, DPUBufferTime: a.cfg.NICo.DPU.BufferTime}}))
	webCfg := web.Config{Addr: lanIP, Port: a.cfg.HTTP.Port, Logger: a.log, Metrics: reg, Ready: a.readiness(p), ReadyDetail: p.readyDetail,
		MaxConnections: a.cfg.HTTP.MaxConnections, MaxConnectionsPerAddress: a.cfg.HTTP.MaxConnectionsPerAddress}
	if p.fingerprint, err = a.serveTLS(&webCfg, mounts, p.cert); err != nil {
		return err
	}
	if p.web, err = web.New(webCfg, mounts...); err != nil {
		return err
	}
	a.web.Store(p.web)
	// Retained states are whole before the first subscriber can connect.
	retained, err := tasks.Retained(ctx)
	if err != nil {
		return err
	}
	current := currentMessages(p.inventory.Machines(), p.bmcs.Statuses(), retained)
	if d, ok, err := p.swdeploy.Current(ctx); err != nil {
		return err
	} else if ok {
		current = append(current, broker.Events{}.DeployMessage(d))
	}
	if err := p.relay.Seed(ctx, current); err != nil {
		return err
	}
	if err := p.broker.Start(); err != nil {
		return err
	}
	p.serve("events", func() error { return p.relay.Run(p.serveCtx) })
	p.serve("console-feed", func() error { return p.feed.Run(p.serveCtx) })
	if p.bridge != nil {
		p.serve("bridge", func() error { return p.bridge.Run(p.serveCtx) })
	}
	p.serve("outbox", func() error { p.outbox.RunPruning(p.serveCtx, time.Hour); return nil })
	p.serve("timeouts", func() error { p.inventory.RunTimeouts(p.serveCtx, timeoutSweep); return nil })
	p.serve("heartbeats", func() error {
		p.inventory.RunHeartbeatPruning(p.serveCtx, a.cfg.Lifecycle.HeartbeatRetention, time.Hour)
		return nil
	})
	p.serve("discovery", func() error {
		p.inventory.RunDiscoveryExpiry(p.serveCtx, time.Hour, func(mac domain.MAC) bool {
			book := p.leases.Load()
			return book != nil && book.Holds(mac)
		})
		return nil
	})
	p.serve("bmcs", func() error { p.bmcs.Run(p.serveCtx); return nil })
	p.serve("tasks", func() error { return p.tasks.Run(p.serveCtx) })
	// A task asked for over HTTP must find its engine running.
	select {
	case <-p.tasks.Started():
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	p.serve("http", p.web.Serve)
	if p.usm != nil {
		p.serve("usm", p.usm.Serve)
	}
	return a.startNetboot(ctx, p, reg)
}

// timeoutSweep is how often machines are checked against lifecycle.timeouts
// (which are minutes at least).
const timeoutSweep = 10 * time.Second

func cloudInit(cfg *config.Config, machines *domain.Inventory, bootActions cloudinit.BootActions, token func(domain.MAC) string, log *slog.Logger) *cloudinit.Renderer {
	templates := make(map[string]string, len(cfg.Profiles))
	for name := range cfg.Profiles {
		templates[name] = cfg.CloudInitTemplate(name)
	}
	return cloudinit.New(cloudinit.Config{TemplatesDir: cfg.TemplatesDir(), Templates: templates,
		DefaultProfile: cfg.DefaultProfile, LANIP: cfg.LANIP(), Logger: log, BootActions: bootActions, Token: token}, machines)
}

func mqttAccess(cfg config.MQTT) broker.Access {
	a := broker.Access{Anonymous: cfg.Anonymous}
	for _, u := range cfg.Users {
		user := broker.User{Name: u.Name, PasswordHash: u.PasswordHash}
		for _, r := range u.ACL {
			user.Rules = append(user.Rules, broker.Rule{Filter: r.Topic, Read: r.Access != "write", Write: r.Access != "read"})
		}
		a.Users = append(a.Users, user)
	}
	return a
}

// stop undoes start in reverse order; parts that never started are skipped.
func (a *Appliance) stop(p *parts) error {
	var errs []error
	p.stopAll()
	if p.dhcp != nil {
		errs = append(errs, p.dhcp.Close())
	}
	if p.ra != nil {
		errs = append(errs, p.ra.Close())
	}
	if p.tftp != nil {
		p.tftp.Shutdown()
	}
	for _, srv := range []*web.Server{p.web, p.usm} {
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), a.cfg.HTTP.ShutdownGrace)
			errs = append(errs, srv.Shutdown(ctx))
			cancel()
		}
	}
	// The relay may be publishing: let it finish before the broker goes.
	p.loops.Wait()
	if p.broker != nil {
		errs = append(errs, p.broker.Close())
	}
	for _, root := range []*os.Root{p.bootRoot, p.assetsRoot, p.firmwareRoot, p.designsRoot} {
		if root != nil {
			errs = append(errs, root.Close())
		}
	}
	if p.outbox != nil {
		errs = append(errs, p.outbox.SavePlaces(context.Background()))
	}
	if p.commit != nil {
		p.commit.Close()
	}
	if p.db != nil {
		errs = append(errs, p.db.Close())
	}
	err := errors.Join(errs...)
	if err == nil {
		a.log.Info("stopped cleanly")
	}
	return err
}

// serve runs a part's serve loop; a loop that ends before stop is a failure.
func (p *parts) serve(name string, loop func() error) {
	p.loops.Add(1)
	go func() {
		defer p.loops.Done()
		err := loop()
		if p.serveCtx.Err() != nil {
			return // stopping: the loop was told to end
		}
		if err == nil {
			err = errors.New("stopped serving")
		}
		err = fmt.Errorf("%s: %w", name, err)
		// Run reads one failure and stops everything; later ones are
		// logged, never waited on (a full channel would hang the stop).
		select {
		case p.errs <- err:
		default:
			p.log.Error("a part stopped unexpectedly while stopping", "error", err)
		}
	}()
}

func (a *Appliance) readiness(p *parts) func(context.Context) error {
	return func(ctx context.Context) error {
		if !a.ready.Load() {
			return errors.New("starting or stopping")
		}
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := p.db.Ping(ctx); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	}
}

// readyDetail is what /readyz says beside ready or not: the upstream
// bridge's state, which never makes the box unready (it provisions
// without its uplink).
func (p *parts) readyDetail() map[string]any {
	if s := p.bridgeStatus(); s != nil {
		return map[string]any{"bridge": s}
	}
	return nil
}

func (a *Appliance) metrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "slipway_build_info",
			Help:        "Always 1; the version label says which Slipway runs.",
			ConstLabels: prometheus.Labels{"version": a.opts.Version},
		}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "slipway_ready",
			Help: "1 while every part serves, 0 while starting or stopping.",
		}, func() float64 {
			if a.ready.Load() {
				return 1
			}
			return 0
		}),
	)
	return reg
}

func (a *Appliance) announce(p *parts) {
	urls := URLs{
		HTTP: "http://" + p.web.Addr().String(),
		MQTT: "mqtt://" + p.broker.Addrs()[0].String(),
	}
	if addrs := p.broker.Addrs(); len(addrs) > 1 {
		urls.WebSocket = "ws://" + addrs[1].String() + "/mqtt"
	}
	if p.usm != nil {
		scheme := "http://"
		if a.cfg.USM.TLS {
			scheme = "https://"
		}
		urls.USM = scheme + p.usm.Addr().String()
	}
	if addr := p.web.TLSAddr(); addr != nil {
		urls.HTTPS, urls.Fingerprint = "https://"+addr.String(), p.fingerprint
	}
	// Loading the store leaves garbage the size of the inventory, which
	// the runtime would hand back to the OS over minutes: hand it back now,
	// so that an idle box holds what it uses (10,000 machines: 78 → 65 MiB
	// resident, BENCHMARKS.md "Footprint").
	debug.FreeOSMemory()
	a.log.Info("slipway ready", "lan", a.cfg.LAN.Interface, "console", urls.HTTPS, "http", urls.HTTP, "mqtt", urls.MQTT, "mqtt_ws", urls.WebSocket, "usm", urls.USM)
	if a.opts.OnReady != nil {
		a.opts.OnReady(urls)
	}
}

// taskService is the stored tasks and the engine that runs them, as the
// API uses them.
type taskService struct {
	task.Reader
	*task.Engine
}

// leaseStats is the DHCP pool's use for the overview: empty until netboot
// starts the lease book (and for good in proxy mode).
type leaseStats struct {
	book *atomic.Pointer[domain.LeaseBook]
}

func (l leaseStats) Active() int {
	if b := l.book.Load(); b != nil {
		return b.Active()
	}
	return 0
}

func (l leaseStats) PoolSize() int {
	if b := l.book.Load(); b != nil {
		return b.PoolSize()
	}
	return 0
}
