package native

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/domain"
)

// MachineReader is the read side of the machine inventory.
type MachineReader interface {
	Machine(ctx context.Context, id string) (domain.MachineRecord, error)
	Machines(ctx context.Context, f domain.MachineFilter) ([]domain.MachineRecord, error)
	Transitions(ctx context.Context, machineID string) ([]domain.Transition, error)
}

// machineJSON is a machine as the native API shows it.
type machineJSON struct {
	ID         string          `json:"machine_id"`
	MACs       []string        `json:"macs"`
	Hostname   string          `json:"hostname,omitempty"`
	Profile    string          `json:"profile,omitempty"`
	Rack       *rackJSON       `json:"rack,omitempty"`
	BMC        string          `json:"bmc_endpoint,omitempty"`
	DPUOf      string          `json:"dpu_of,omitempty"`
	ReleaseID  string          `json:"release_id,omitempty"`
	Source     string          `json:"source"`
	State      json.RawMessage `json:"managed_host_state"`
	StateSince time.Time       `json:"state_since"`
	CreatedAt  time.Time       `json:"created_at"`
	// In listings: where it was last seen.
	IP            string    `json:"ip,omitempty"`
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
	Power         string    `json:"power_state,omitempty"`
}

type rackJSON struct {
	ID       string `json:"rack_id"`
	Name     string `json:"rack_name,omitempty"`
	Tray     *int   `json:"tray,omitempty"` // none when not known (a design's node)
	TrayType string `json:"tray_type,omitempty"`
}

type transitionJSON struct {
	Seq   int64           `json:"seq"`
	From  string          `json:"from"`
	To    string          `json:"to"`
	State json.RawMessage `json:"managed_host_state"`
	Cause string          `json:"cause"`
	At    time.Time       `json:"at"`
}

func toTransitionJSON(t domain.Transition) transitionJSON {
	return transitionJSON{Seq: t.Seq, From: t.From, To: t.To, State: t.State, Cause: t.Cause, At: t.At}
}

func toMachineJSON(m domain.MachineRecord) machineJSON {
	out := machineJSON{ID: m.ID, MACs: make([]string, len(m.MACs)), Hostname: m.Hostname, Profile: m.Profile, BMC: m.BMCEndpoint, DPUOf: m.DPUOf, ReleaseID: m.ReleaseID,
		Source: m.Source, State: m.State, StateSince: m.StateSince, CreatedAt: m.CreatedAt,
		IP: m.IP, LastHeartbeat: m.LastHeartbeat, Power: m.Power}
	for i, mac := range m.MACs {
		out.MACs[i] = string(mac)
	}
	if m.RackID != "" {
		out.Rack = &rackJSON{ID: m.RackID, Name: m.RackName, Tray: trayOf(m), TrayType: m.TrayType}
	}
	return out
}

const maxPage = 1000

func machineRoutes(api fiber.Router, machines MachineReader) {
	api.Get("/machines", func(c *fiber.Ctx) error {
		limit, err := strconv.Atoi(c.Query("limit", "100"))
		if err != nil || limit < 1 || limit > maxPage {
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("limit must be a whole number from 1 to %d", maxPage))
		}
		f := domain.MachineFilter{State: c.Query("state"), Query: c.Query("q"), AfterID: c.Query("after"), Limit: limit}
		list, err := machines.Machines(c.UserContext(), f)
		if err != nil {
			return err
		}
		items := make([]machineJSON, len(list))
		for i, m := range list {
			items[i] = toMachineJSON(m)
		}
		page := fiber.Map{"machines": items}
		if len(list) == limit {
			// The next page keeps the filter; ids and states are escaped.
			q := url.Values{"limit": {strconv.Itoa(limit)}, "after": {list[len(list)-1].ID}}
			if f.State != "" {
				q.Set("state", f.State)
			}
			if f.Query != "" {
				q.Set("q", f.Query)
			}
			page["next"] = "/api/v1/machines?" + q.Encode()
		}
		return c.JSON(page)
	})
	api.Get("/machines/:id", func(c *fiber.Ctx) error {
		m, err := machines.Machine(c.UserContext(), c.Params("id"))
		if errors.Is(err, domain.ErrNotFound) {
			return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no machine with id %q", c.Params("id")))
		}
		if err != nil {
			return err
		}
		hist, err := machines.Transitions(c.UserContext(), m.ID)
		if err != nil {
			return err
		}
		history := make([]transitionJSON, len(hist))
		for i, t := range hist {
			history[i] = toTransitionJSON(t)
		}
		return c.JSON(fiber.Map{"machine": toMachineJSON(m), "history": history})
	})
}
