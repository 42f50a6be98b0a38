package native

import (
	"context"
	"net/netip"
	"sort"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/web"
)

// Leases lists the DHCP leases.
type Leases interface {
	Leases(ctx context.Context) ([]domain.Lease, error)
}

type leaseJSON struct {
	IP        string    `json:"ip"`
	MAC       string    `json:"mac"`
	Hostname  string    `json:"hostname,omitempty"`
	State     string    `json:"state"`
	ExpiresAt time.Time `json:"expires_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func leaseRoutes(api fiber.Router, leases Leases) {
	api.Get("/leases", func(c *fiber.Ctx) error {
		list, err := leases.Leases(c.UserContext())
		if err != nil {
			return err
		}
		out := make([]leaseJSON, len(list))
		for i, l := range list {
			out[i] = leaseJSON{IP: l.IP, MAC: string(l.MAC), Hostname: l.Hostname, State: l.State, ExpiresAt: l.ExpiresAt, UpdatedAt: l.UpdatedAt}
		}
		// By address, as people read a pool.
		sort.Slice(out, func(i, j int) bool {
			a, aerr := netip.ParseAddr(out[i].IP)
			b, berr := netip.ParseAddr(out[j].IP)
			if aerr != nil || berr != nil {
				return out[i].IP < out[j].IP
			}
			return a.Less(b)
		})
		return c.JSON(fiber.Map{"leases": out})
	})
}

// settingsRoute shows the effective configuration, as YAML, with every
// secret redacted; admins only, since it maps the whole site.
func settingsRoute(api fiber.Router, effective func() (string, error)) {
	api.Get("/settings", web.RequireRole(web.RoleAdmin), func(c *fiber.Ctx) error {
		y, err := effective()
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"yaml": y})
	})
}
