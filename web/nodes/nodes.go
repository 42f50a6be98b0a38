package nodes

import (
	"log/slog"
	"os"

	"github.com/gofiber/fiber/v2"

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
	// ServerURL is how nodes reach this server, when a request does not say.
	ServerURL string
}

// New is what netbooting nodes and BMCs fetch, open on the LAN (they have
// no credentials to give): boot scripts and files, the gb10 onboarding API
// (cloud-init by MAC, heartbeats, clients) and firmware images.
func New(cfg Config) web.Mount {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return web.Mount{Name: "nodes", Routes: func(r fiber.Router, _ <-chan struct{}) {
		bootRoutes(r, cfg)
		onboardingRoutes(r, cfg)
		if cfg.FirmwareRoot != nil {
			r.Get("/firmware/*", files(cfg.FirmwareRoot, "/firmware/"))
		}
	}}
}
