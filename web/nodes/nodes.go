package nodes

import (
	"cmp"
	"log/slog"
	"net/netip"
	"os"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/web"
)

// Config is what the node-facing doors serve from. A nil part leaves its
// routes out.
type Config struct {
	Logger *slog.Logger
	// BootRoot is served read-only under /boot/ (the TFTP root), AssetsRoot
	// under /assets/ (kernels, initrds, images), FirmwareRoot under
	// /firmware/ (the images BMCs fetch).
	BootRoot     *os.Root
	AssetsRoot   *os.Root
	FirmwareRoot *os.Root
	// BootConfigs renders /boot.ipxe and per-MAC files under /boot/.
	BootConfigs BootConfigs
	// CloudInit serves /cloud-init/*; Onboarding /heartbeat and /clients.
	CloudInit  CloudInit
	Onboarding Onboarding
	// Neighbors places requests that do not name their MAC.
	Neighbors Neighbors
	// Callers, if set, refuses a request that names a MAC its machine did
	// not send (netboot.caller_check).
	Callers Callers
	// ServerURL is how nodes reach this server, when a request does not say.
	ServerURL string
}

// Callers says whether a request that names a MAC comes from its machine:
// nil, or why not.
type Callers interface {
	Prove(mac domain.MAC, from domain.Caller, door domain.Door) error
}

// tokenHeader carries a node token on any node-facing request.
const tokenHeader = "X-Slipway-Token"

// proveCaller answers 403 for a request naming mac that its machine did
// not send; token is one the body carried, if any. A request placed by
// the neighbour table (no MAC given) is its machine's already.
func proveCaller(c *fiber.Ctx, cfg Config, mac domain.MAC, token string, door domain.Door) error {
	if cfg.Callers == nil || mac == "" {
		return nil
	}
	from := caller(c)
	from.Token = cmp.Or(token, from.Token)
	if err := cfg.Callers.Prove(mac, from, door); err != nil {
		return fiber.NewError(fiber.StatusForbidden, err.Error())
	}
	return nil
}

// caller is who sent c: its address, and the node token in its header or
// query, if any.
func caller(c *fiber.Ctx) domain.Caller {
	ip, _ := netip.ParseAddr(c.IP())
	return domain.Caller{Addr: ip, Token: cmp.Or(c.Get(tokenHeader), c.Query("token"))}
}

// New is what netbooting nodes and BMCs fetch, open on the LAN (they have
// no credentials to give): boot scripts and files, the gb10 onboarding API
// (cloud-init by MAC, heartbeats, clients) and firmware images.
func New(cfg Config) web.Mount {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return web.Mount{Name: "nodes", Routes: func(r fiber.Router, done <-chan struct{}) {
		bootRoutes(r, cfg, done)
		onboardingRoutes(r, cfg)
		if cfg.FirmwareRoot != nil {
			r.Get("/firmware/*", files(cfg.FirmwareRoot, "/firmware/", done))
		}
	}}
}
