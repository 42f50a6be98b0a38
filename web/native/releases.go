package native

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/release"
	"github.com/slipway/slipway/appliance/swdeploy"
)

// Releases are the OS releases on the box and the deploy in progress (USM's
// API, on its own port, changes them; the console reads them here).
type Releases interface {
	Releases(ctx context.Context, show, rel string) ([]release.Release, error)
	Current(ctx context.Context) (swdeploy.Deploy, bool, error)
}

type releaseJSON struct {
	ID             string    `json:"release_id"`
	Version        string    `json:"sw_version"`
	State          string    `json:"state"`
	Summary        string    `json:"summary"`
	Description    string    `json:"description"`
	RebootRequired bool      `json:"reboot_required"`
	Signer         string    `json:"signer"`
	SHA256         string    `json:"sha256"`
	Size           int64     `json:"size"`
	CreatedAt      time.Time `json:"created_at"`
}

type deployHostJSON struct {
	Hostname        string `json:"hostname"`
	MachineID       string `json:"machine_id"`
	SoftwareRelease string `json:"software_release"`
	State           string `json:"host_state"`
	TaskID          string `json:"task_id,omitempty"`
	Error           string `json:"error,omitempty"`
}

type deployJSON struct {
	ReleaseID   string           `json:"release_id"`
	FromRelease string           `json:"from_release"`
	ToRelease   string           `json:"to_release"`
	State       string           `json:"state"`
	Hosts       []deployHostJSON `json:"hosts"`
}

func releaseRoutes(api fiber.Router, rels Releases) {
	api.Get("/releases", func(c *fiber.Ctx) error {
		list, err := rels.Releases(c.UserContext(), "", "")
		if err != nil {
			return err
		}
		out := make([]releaseJSON, len(list))
		for i, r := range list {
			out[i] = releaseJSON{ID: r.ReleaseID, Version: r.SWVersion, State: r.State, Summary: r.Summary, Description: r.Description,
				RebootRequired: r.RebootRequired == nil || *r.RebootRequired, Signer: r.Signer, SHA256: r.SHA256, Size: r.Size, CreatedAt: r.CreatedAt}
		}
		return c.JSON(fiber.Map{"releases": out})
	})
	api.Get("/deploy", func(c *fiber.Ctx) error {
		d, ok, err := rels.Current(c.UserContext())
		if err != nil || !ok {
			if err != nil {
				return err
			}
			return c.JSON(fiber.Map{"deploy": nil})
		}
		out := deployJSON{ReleaseID: d.ToReleaseID, FromRelease: d.FromVersion, ToRelease: d.ToVersion, State: d.State, Hosts: []deployHostJSON{}}
		for _, h := range d.Hosts {
			out.Hosts = append(out.Hosts, deployHostJSON{Hostname: h.Hostname, MachineID: h.MachineID, SoftwareRelease: d.SoftwareRelease(h),
				State: h.State, TaskID: h.TaskID, Error: h.Error})
		}
		return c.JSON(fiber.Map{"deploy": out})
	})
}
