package native

import (
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Chart windows: the console asks for the last hour; an operator may
// look back a day.
const (
	minChartWindow = 5 * time.Minute
	maxChartWindow = 24 * time.Hour
	chartPoints    = 60 // a window is drawn from this many steps
	readyBuckets   = 20 // bars of the time-to-ready histogram
)

// charts answers the overview's charts: machines per state over a window
// (from the stored transitions), how long the machines that booted in it
// took to become ready, BMC reachability and the DHCP pool's use.
func charts(fleet FleetStats, bmcs BMCs, leases LeaseStats) fiber.Handler {
	return func(c *fiber.Ctx) error {
		window, err := time.ParseDuration(c.Query("window", "1h"))
		if err != nil || window < minChartWindow || window > maxChartWindow {
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("window must be a duration from %s to %s, as 30m or 2h", minChartWindow, maxChartWindow))
		}
		step := window / chartPoints
		h, err := fleet.History(c.UserContext(), window, step, time.Now())
		if err != nil {
			return err
		}
		out := fiber.Map{"window_seconds": window.Seconds(), "step_seconds": step.Seconds(), "points": h.Points,
			"states": h.Counts, "partial": h.Partial, "time_to_ready": readyJSON(h.ToReady)}
		if bmcs != nil {
			reach := map[string]int{"reachable": 0, "partial": 0, "unusable": 0, "new": 0}
			for _, s := range bmcs.Statuses() {
				word := bmcWord(s.Reachable, s.LastError, !s.ChangedAt.IsZero())
				if word == "reachable" && len(s.Inventory.Missing) > 0 {
					word = "partial"
				}
				reach[word]++
			}
			out["bmcs"] = reach
		}
		if leases != nil && leases.PoolSize() > 0 {
			out["leases"] = fiber.Map{"active": leases.Active(), "pool_size": leases.PoolSize()}
		}
		return c.JSON(out)
	}
}

// readyJSON summarises times to ready (shortest first): percentiles and a
// histogram of equal buckets from zero to the longest.
func readyJSON(d []time.Duration) fiber.Map {
	out := fiber.Map{"machines": len(d)}
	if len(d) == 0 {
		return out
	}
	pct := func(p int) float64 { return d[min(len(d)-1, len(d)*p/100)].Seconds() }
	longest := d[len(d)-1]
	bucket := max(longest/readyBuckets, time.Second)
	counts := make([]int, int(longest/bucket)+1)
	for _, x := range d {
		counts[int(x/bucket)]++
	}
	out["p50_seconds"], out["p95_seconds"], out["max_seconds"] = pct(50), pct(95), longest.Seconds()
	out["histogram"] = fiber.Map{"bucket_seconds": bucket.Seconds(), "counts": counts}
	return out
}
