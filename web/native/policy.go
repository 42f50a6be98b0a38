package native

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/web"
)

// Policy is the run-time policy an admin changes from the console: what
// an unknown machine gets when it netboots, and discovery.
type Policy interface {
	Policy() domain.RunPolicy
	FilePolicy() domain.RunPolicy
	SetPolicy(ctx context.Context, p domain.RunPolicy, by string) (domain.RunPolicy, error)
	ResetPolicy(ctx context.Context, by string) (domain.RunPolicy, error)
}

// policyJSON is a RunPolicy as the API shows and takes it; expire_after
// is a duration ("72h", "0s": keep them).
type policyJSON struct {
	UnknownMachines string    `json:"unknown_machines"`
	Doors           []string  `json:"discovery_doors"`
	MaxMachines     int       `json:"discovery_max_machines"`
	ExpireAfter     string    `json:"discovery_expire_after"`
	Source          string    `json:"source,omitempty"`
	ChangedBy       string    `json:"changed_by,omitempty"`
	ChangedAt       time.Time `json:"changed_at,omitzero"`
}

func toPolicyJSON(p domain.RunPolicy) policyJSON {
	out := policyJSON{UnknownMachines: string(p.UnknownMachines), Doors: []string{}, MaxMachines: p.Discovery.MaxMachines,
		ExpireAfter: p.Discovery.ExpireAfter.String(), Source: p.Source, ChangedBy: p.ChangedBy, ChangedAt: p.ChangedAt}
	for _, d := range p.Discovery.Doors {
		out.Doors = append(out.Doors, string(d))
	}
	return out
}

// policyRoutes: the policy in force and the file's (anyone), a change and
// a reset to the file's (admins).
func policyRoutes(api fiber.Router, policy Policy) {
	answer := func(c *fiber.Ctx, p domain.RunPolicy) error {
		return c.JSON(fiber.Map{"policy": toPolicyJSON(p), "file": toPolicyJSON(policy.FilePolicy())})
	}
	api.Get("/settings/policy", func(c *fiber.Ctx) error { return answer(c, policy.Policy()) })
	api.Put("/settings/policy", web.RequireRole(web.RoleAdmin), func(c *fiber.Ctx) error {
		var body policyJSON
		if err := web.DecodeStrictJSON(c.Body(), &body); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
		p := domain.RunPolicy{UnknownMachines: domain.UnknownPolicy(body.UnknownMachines), Discovery: domain.DiscoveryPolicy{MaxMachines: body.MaxMachines}}
		for _, d := range body.Doors {
			p.Discovery.Doors = append(p.Discovery.Doors, domain.Door(d))
		}
		if body.ExpireAfter != "" {
			var err error
			if p.Discovery.ExpireAfter, err = time.ParseDuration(body.ExpireAfter); err != nil {
				return fiber.NewError(fiber.StatusBadRequest, "discovery_expire_after: "+err.Error()+` (use a duration: "72h", or "0s" to keep them)`)
			}
		}
		who, _ := web.CallerOf(c)
		set, err := policy.SetPolicy(c.UserContext(), p, who.User)
		if errors.Is(err, domain.ErrBadPolicy) {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
		if err != nil {
			return err
		}
		return answer(c, set)
	})
	api.Delete("/settings/policy", web.RequireRole(web.RoleAdmin), func(c *fiber.Ctx) error {
		who, _ := web.CallerOf(c)
		p, err := policy.ResetPolicy(c.UserContext(), who.User)
		if err != nil {
			return err
		}
		return answer(c, p)
	})
}
