package native

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/deploy"
	"github.com/slipway/slipway/appliance/design"
	"github.com/slipway/slipway/web"
)

// Designs are the site designs uploaded to the box (Drydock's documents),
// which Drydock's API takes as design_ref slipway:<name>.
type Designs interface {
	Put(name string, text []byte) (*design.Design, error)
	Text(name string) ([]byte, error)
	Names() ([]string, error)
	Delete(name string) error
}

// Deployments are the boot actions and build data of the machines a site
// design deploys.
type Deployments interface {
	BootActions(ctx context.Context, node string) ([]deploy.BootAction, error)
	NodeBuildData(ctx context.Context, node string, latest bool) ([]deploy.BuildData, error)
}

type problemJSON struct {
	Level    string `json:"level"`
	Schema   string `json:"schema,omitempty"`
	Document string `json:"document,omitempty"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message"`
}

type designJSON struct {
	Name     string        `json:"name"`
	Ref      string        `json:"design_ref"`
	Valid    bool          `json:"valid"`
	Nodes    []string      `json:"nodes"`
	Actions  []string      `json:"boot_actions"`
	Problems []problemJSON `json:"problems"`
}

func toDesignJSON(name string, d *design.Design) designJSON {
	out := designJSON{Name: name, Ref: design.RefPrefix + name, Valid: d.Valid(), Nodes: []string{}, Actions: []string{}, Problems: []problemJSON{}}
	for _, n := range d.Nodes {
		out.Nodes = append(out.Nodes, n.Name)
	}
	for _, a := range d.BootActions {
		out.Actions = append(out.Actions, a.Name)
	}
	for _, p := range d.Problems {
		out.Problems = append(out.Problems, problemJSON{Level: string(p.Level), Schema: p.Document.Schema, Document: p.Document.Name,
			Field: p.Field, Message: p.Message})
	}
	return out
}

// designRoutes: PUT a design's YAML (admins), read it back, list, delete.
// A design with problems is kept, and its problems are the answer.
func designRoutes(api fiber.Router, designs Designs) {
	api.Get("/designs", func(c *fiber.Ctx) error {
		names, err := designs.Names()
		if err != nil {
			return err
		}
		if names == nil {
			names = []string{}
		}
		return c.JSON(fiber.Map{"designs": names})
	})
	api.Put("/designs/:name", web.RequireRole(web.RoleAdmin), func(c *fiber.Ctx) error {
		if len(c.Body()) > design.MaxSize {
			return fiber.NewError(fiber.StatusRequestEntityTooLarge, "a design is at most 16 MiB")
		}
		d, err := designs.Put(c.Params("name"), c.Body())
		if err != nil {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
		return c.JSON(toDesignJSON(c.Params("name"), d))
	})
	api.Get("/designs/:name", func(c *fiber.Ctx) error {
		text, err := designs.Text(c.Params("name"))
		if errors.Is(err, design.ErrUnknown) {
			return fiber.NewError(fiber.StatusNotFound, err.Error())
		}
		if err != nil {
			return err
		}
		if c.Accepts(fiber.MIMEApplicationJSON, "application/yaml") == "application/yaml" {
			c.Set(fiber.HeaderContentType, "application/yaml")
			return c.Send(text)
		}
		d, err := design.Parse(text, nil)
		if err != nil {
			return fiber.NewError(fiber.StatusUnprocessableEntity, err.Error())
		}
		return c.JSON(toDesignJSON(c.Params("name"), d))
	})
	api.Delete("/designs/:name", web.RequireRole(web.RoleAdmin), func(c *fiber.Ctx) error {
		err := designs.Delete(c.Params("name"))
		if errors.Is(err, design.ErrUnknown) {
			return fiber.NewError(fiber.StatusNotFound, err.Error())
		}
		if err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusNoContent)
	})
}

type bootActionJSON struct {
	ID        string          `json:"action_id"`
	Name      string          `json:"name"`
	TaskID    string          `json:"task_id"`
	Status    string          `json:"status"`
	Details   []deploy.Detail `json:"details"`
	UpdatedAt string          `json:"updated_at"`
}

type buildDataJSON struct {
	Generator   string `json:"generator"`
	Format      string `json:"data_format"`
	TaskID      string `json:"task_id,omitempty"`
	CollectedAt string `json:"collected_at"`
	Data        string `json:"data"`
}

// deploymentRoutes: a machine's boot actions (of its newest deployment)
// and its build data (the newest of each generator).
func deploymentRoutes(api fiber.Router, dep Deployments) {
	api.Get("/machines/:id/bootactions", func(c *fiber.Ctx) error {
		list, err := dep.BootActions(c.UserContext(), c.Params("id"))
		if err != nil {
			return err
		}
		out := make([]bootActionJSON, len(list))
		for i, b := range list {
			details := b.Details
			if details == nil {
				details = []deploy.Detail{}
			}
			out[i] = bootActionJSON{ID: b.ID, Name: b.Name, TaskID: b.TaskID, Status: b.Status, Details: details,
				UpdatedAt: b.UpdatedAt.UTC().Format(time.RFC3339)}
		}
		return c.JSON(fiber.Map{"boot_actions": out})
	})
	api.Get("/machines/:id/builddata", func(c *fiber.Ctx) error {
		list, err := dep.NodeBuildData(c.UserContext(), c.Params("id"), c.Query("all") != "true")
		if err != nil {
			return err
		}
		out := make([]buildDataJSON, len(list))
		for i, b := range list {
			out[i] = buildDataJSON{Generator: b.Generator, Format: b.Format, TaskID: b.TaskID,
				CollectedAt: b.CollectedAt.UTC().Format(time.RFC3339), Data: b.Element}
		}
		return c.JSON(fiber.Map{"build_data": out})
	})
}
