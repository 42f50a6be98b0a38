package native

import (
	"cmp"
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/compress"

	"github.com/slipway/slipway/web"
)

// Prefix is where the native API lives.
const Prefix = "/api/v1"

// Services are what the native API answers from: the model's services, each
// seen through the small interface its routes need. A nil service leaves
// its routes out.
type Services struct {
	Version string
	// Fingerprint, if set, is the console's TLS certificate's SHA-256,
	// which /version shows for the operator to compare with the browser's.
	Fingerprint func() string
	// Auth says who may call (all of the API but login and version).
	Auth Auth
	// Machines serves the machine inventory; Onboarding resets a machine's
	// heartbeats.
	Machines   MachineReader
	Onboarding HeartbeatReset
	// BMCs serves /bmcs and machine provisioning.
	BMCs BMCs
	// Firmware serves the image library and updates; Tasks the tasks.
	Firmware Firmware
	Tasks    Tasks
	// Fleet, Leases and BMCs feed the overview; Events streams the bus to
	// the console.
	Fleet  FleetStats
	Leases LeaseStats
	Events Events
	// EventsPing is how often an idle event stream is pinged, which is also
	// how soon a client that left is noticed (default 15 s).
	EventsPing time.Duration
	// LeaseList serves /leases; Settings the effective config, as YAML
	// with secrets redacted.
	LeaseList Leases
	Settings  func() (string, error)
	// Designs serves /designs; Deployments a machine's boot actions and
	// build data.
	Designs     Designs
	Deployments Deployments
	// Releases serves /releases and /deploy (USM's, read only).
	Releases Releases
	// Bridge, if set, is the upstream bridge's status for the overview
	// (nil when there is no bridge).
	Bridge func() any
	// Policy serves the run-time policy (settings/policy).
	Policy Policy
}

// HeartbeatReset forgets a machine's heartbeats before a reinstall.
type HeartbeatReset interface {
	ResetOnboarding(ctx context.Context, machineID string) (int64, error)
}

// New is the native API as a mount: Slipway tokens as Bearer, the
// console's session cookie with its CSRF token, or HTTP basic for
// scripts; errors as {"error": "..."}.
func New(svc Services) web.Mount {
	open := []string{Prefix + "/login", Prefix + "/version"}
	return web.Mount{
		Name:           "native",
		Prefix:         Prefix,
		Auth:           web.Authenticate(svc.Auth, "log in: POST "+Prefix+"/login, then send the token as Authorization: Bearer (or use HTTP basic authentication)", open, web.BearerToken, web.SessionCookieCSRF, web.BasicAuth),
		StreamedBodies: []string{uploadPath},
		Routes:         func(r fiber.Router, stopping <-chan struct{}) { routes(r, svc, stopping) },
	}
}

func routes(api fiber.Router, svc Services, stopping <-chan struct{}) {
	api.Use(onlyPasswordChange)
	// Answers go compressed to a client that accepts it (brotli or gzip at
	// their fastest): the racks of a 10,000-machine site are 1.5 MiB of
	// JSON, a console across a site's VPN waits for every byte. Not the
	// event stream, whose events must leave as they happen.
	api.Use(compress.New(compress.Config{Level: compress.LevelBestSpeed,
		Next: func(c *fiber.Ctx) bool { return c.Path() == Prefix+"/events" }}))
	api.Get("/version", func(c *fiber.Ctx) error {
		out := fiber.Map{"version": svc.Version}
		if svc.Fingerprint != nil && svc.Fingerprint() != "" {
			out["tls_fingerprint"] = svc.Fingerprint()
		}
		return c.JSON(out)
	})
	if svc.Auth != nil {
		authRoutes(api, svc.Auth)
	}
	if svc.Policy != nil {
		policyRoutes(api, svc.Policy)
	}
	if svc.Machines != nil {
		machineRoutes(api, svc.Machines)
		api.Get("/racks", racks(svc.Machines, svc.BMCs, svc.Tasks))
		api.Get("/racks/tasks", rackTaskMarks(svc.Tasks))
	}
	if svc.Onboarding != nil {
		// An operator clears a machine's heartbeats before a reinstall.
		api.Delete("/machines/:id/heartbeats", web.RequireRole(web.RoleOperator), func(c *fiber.Ctx) error {
			n, err := svc.Onboarding.ResetOnboarding(c.UserContext(), c.Params("id"))
			if err != nil {
				return actionError(err)
			}
			return c.JSON(fiber.Map{"machine_id": c.Params("id"), "heartbeats_forgotten": n})
		})
	}
	if svc.BMCs != nil {
		bmcRoutes(api, svc.BMCs)
	}
	if svc.Firmware != nil {
		firmwareRoutes(api, svc.Firmware)
	}
	if svc.Tasks != nil {
		taskRoutes(api, svc.Tasks)
	}
	if svc.Fleet != nil {
		api.Get("/overview", overview(svc.Fleet, svc.BMCs, svc.Leases, svc.Bridge))
		api.Get("/charts", charts(svc.Fleet, svc.BMCs, svc.Leases))
	}
	if svc.Events != nil {
		api.Get("/events", liveEvents(svc.Events, cmp.Or(svc.EventsPing, 15*time.Second), stopping))
	}
	if svc.LeaseList != nil {
		leaseRoutes(api, svc.LeaseList)
	}
	if svc.Settings != nil {
		settingsRoute(api, svc.Settings)
	}
	if svc.Designs != nil {
		designRoutes(api, svc.Designs)
	}
	if svc.Deployments != nil {
		deploymentRoutes(api, svc.Deployments)
	}
	if svc.Releases != nil {
		releaseRoutes(api, svc.Releases)
	}
}
