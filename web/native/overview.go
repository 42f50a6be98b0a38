package native

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/domain"
)

// FleetStats counts machines and lists what happened last.
type FleetStats interface {
	CountMachinesByState(ctx context.Context) (map[string]int, error)
	RecentTransitions(ctx context.Context, limit int) ([]domain.Transition, error)
	History(ctx context.Context, window, step time.Duration, now time.Time) (domain.StateHistory, error)
}

// LeaseStats is the DHCP pool's use.
type LeaseStats interface {
	Active() int
	PoolSize() int
}

type recentJSON struct {
	MachineID string `json:"machine_id"`
	transitionJSON
}

// overview is the console's first page: machines per state, BMCs, the
// DHCP pool, the upstream bridge and the last transitions.
func overview(fleet FleetStats, bmcs BMCs, leases LeaseStats, bridge func() any) fiber.Handler {
	return func(c *fiber.Ctx) error {
		counts, err := fleet.CountMachinesByState(c.UserContext())
		if err != nil {
			return err
		}
		total := 0
		for _, n := range counts {
			total += n
		}
		recent, err := fleet.RecentTransitions(c.UserContext(), 20)
		if err != nil {
			return err
		}
		out := fiber.Map{"machines_by_state": counts, "machines_total": total, "recent": recentJSONs(recent)}
		if bmcs != nil {
			all, unusable, reachable := bmcs.Statuses(), 0, 0
			for _, s := range all {
				if s.LastError != "" {
					unusable++
				}
				if s.Reachable {
					reachable++
				}
			}
			out["bmcs"] = fiber.Map{"total": len(all), "reachable": reachable, "unusable": unusable}
		}
		if leases != nil && leases.PoolSize() > 0 {
			out["leases"] = fiber.Map{"active": leases.Active(), "pool_size": leases.PoolSize()}
		}
		if bridge != nil {
			if s := bridge(); s != nil {
				out["bridge"] = s
			}
		}
		return c.JSON(out)
	}
}

func recentJSONs(ts []domain.Transition) []recentJSON {
	out := make([]recentJSON, len(ts))
	for i, t := range ts {
		out[i] = recentJSON{MachineID: t.MachineID, transitionJSON: toTransitionJSON(t)}
	}
	return out
}
