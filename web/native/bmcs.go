package native

import (
	"context"
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/web"
)

// BMCs is the BMC manager as the API uses it.
type BMCs interface {
	Statuses() []bmc.Status
	Status(id string) (bmc.Status, error)
	Register(ctx context.Context, r bmc.Registration) (bmc.Status, error)
	Remove(ctx context.Context, id string) error
	Power(ctx context.Context, id string, a bmc.PowerAction) (string, error)
	Provision(ctx context.Context, machineID string, o bmc.ProvisionOptions) (bmc.Provisioned, error)
}

type registerBody struct {
	Endpoint  string `json:"endpoint"`
	Username  string `json:"username"`
	Password  string `json:"password"`
	Insecure  bool   `json:"insecure_skip_verify"`
	MachineID string `json:"machine_id"`
	System    string `json:"system"`
}

type powerBody struct {
	Action string `json:"action"`
}

type provisionBody struct {
	HTTPBoot bool   `json:"http_boot"`
	Mode     string `json:"boot_mode"`
}

func bmcRoutes(api fiber.Router, bmcs BMCs) {
	api.Get("/bmcs", func(c *fiber.Ctx) error {
		id := c.Query("machine_id")
		out := []bmcJSON{}
		for _, s := range bmcs.Statuses() {
			if id == "" || s.MachineID == id {
				out = append(out, toBMCJSON(s))
			}
		}
		return c.JSON(fiber.Map{"bmcs": out})
	})
	api.Get("/bmcs/:id", func(c *fiber.Ctx) error {
		s, err := bmcs.Status(c.Params("id"))
		if err != nil {
			return actionError(err)
		}
		return c.JSON(toBMCJSON(s))
	})
	api.Post("/bmcs", web.RequireRole(web.RoleAdmin), func(c *fiber.Ctx) error {
		var b registerBody
		if err := web.DecodeJSON(c, &b); err != nil {
			return err
		}
		s, err := bmcs.Register(c.UserContext(), bmc.Registration{Endpoint: b.Endpoint, Username: b.Username, Password: b.Password,
			Insecure: b.Insecure, MachineID: b.MachineID, Source: domain.SourceAPI, System: b.System})
		if errors.Is(err, bmc.ErrSameBMC) {
			return fiber.NewError(fiber.StatusConflict, err.Error())
		}
		if err != nil {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
		return c.Status(fiber.StatusCreated).JSON(toBMCJSON(s))
	})
	api.Delete("/bmcs/:id", web.RequireRole(web.RoleAdmin), func(c *fiber.Ctx) error {
		if err := bmcs.Remove(c.UserContext(), c.Params("id")); err != nil {
			return actionError(err)
		}
		return c.SendStatus(fiber.StatusNoContent)
	})
	api.Post("/bmcs/:id/power", web.RequireRole(web.RoleOperator), func(c *fiber.Ctx) error {
		var b powerBody
		if err := web.DecodeJSON(c, &b); err != nil {
			return err
		}
		a, err := bmc.ParsePowerAction(b.Action)
		if err != nil {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
		reset, err := bmcs.Power(c.UserContext(), c.Params("id"), a)
		if err != nil {
			return actionError(err)
		}
		return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"bmc_id": c.Params("id"), "action": a, "reset_type": reset})
	})
	api.Post("/machines/:id/provision", web.RequireRole(web.RoleOperator), func(c *fiber.Ctx) error {
		var b provisionBody
		if err := web.DecodeJSON(c, &b); err != nil {
			return err
		}
		if b.Mode != "" && b.Mode != "UEFI" && b.Mode != "Legacy" {
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("boot_mode %q: use UEFI or Legacy, or leave it out to keep the machine's", b.Mode))
		}
		p, err := bmcs.Provision(c.UserContext(), c.Params("id"), bmc.ProvisionOptions{HTTPBoot: b.HTTPBoot, Mode: b.Mode})
		if err != nil {
			return actionError(err)
		}
		return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"provisioned": toProvisionedJSON(p), "managed_host_state": p.State})
	})
}

// actionError gives an operator action's failure its HTTP status: what
// does not exist is 404, what the lifecycle or the task engine refuses
// (another task holds the machine, the task has ended) 409, what the BMC
// refused or could not do 502, with the BMC's reason.
func actionError(err error) error {
	var illegal *domain.IllegalTransitionError
	var action *bmc.ActionError
	switch {
	case errors.Is(err, bmc.ErrUnknownBMC), errors.Is(err, domain.ErrNotFound):
		return fiber.NewError(fiber.StatusNotFound, err.Error())
	case errors.As(err, &illegal), errors.Is(err, task.ErrBusy), errors.Is(err, task.ErrFinished), errors.Is(err, bmc.ErrSeveralBMCs):
		return fiber.NewError(fiber.StatusConflict, err.Error())
	case errors.As(err, &action):
		return fiber.NewError(fiber.StatusBadGateway, err.Error())
	}
	return err
}
