package nico

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/trays"
	"github.com/slipway/slipway/web"
)

// Prefix is where NICo's REST API lives; the org comes next.
const Prefix = "/v2/org"

// Trays lists the site's trays and updates their firmware.
type Trays interface {
	Trays(ctx context.Context) ([]trays.Tray, error)
	Update(ctx context.Context, r trays.Request) ([]string, error)
}

// Services are what the API answers from.
type Services struct {
	Auth  web.Credentials
	Trays Trays
}

// New is NICo's tray API as a mount.
func New(svc Services) web.Mount {
	return web.Mount{
		Name:   "nico",
		Prefix: Prefix,
		Auth:   web.Authenticate(svc.Auth, "send a Slipway token (POST /api/v1/login) as Authorization: Bearer", nil, web.BearerToken),
		Errors: shapeError,
		Routes: func(r fiber.Router, _ <-chan struct{}) {
			r.Use(providerAdmin)
			r.Get("/:org/nico/user/current", currentUser)
			r.Get("/:org/nico/tray", listTrays(svc.Trays))
			r.Patch("/:org/nico/tray/firmware", updateFirmware(svc.Trays, false))
			r.Patch("/:org/nico/rack/firmware", updateFirmware(svc.Trays, true))
		},
	}
}

// providerAdmin lets through a caller one of whose roles ends in
// PROVIDER_ADMIN, as NICo requires.
func providerAdmin(c *fiber.Ctx) error {
	who, ok := web.CallerOf(c)
	if !ok {
		return fiber.NewError(fiber.StatusUnauthorized, "log in first")
	}
	for _, r := range who.Roles {
		if strings.HasSuffix(r, "PROVIDER_ADMIN") {
			return c.Next()
		}
	}
	return fiber.NewError(fiber.StatusForbidden, fmt.Sprintf("user %q has no role with the PROVIDER_ADMIN suffix (roles: %s); Slipway's admin role carries one",
		who.User, strings.Join(who.Roles, ", ")))
}

// shapeError answers as NICo's REST API does: {"source","message","data"}.
func shapeError(c *fiber.Ctx, code int, err error) error {
	data := fiber.Map(nil)
	var re *trays.RuleError
	if errors.As(err, &re) {
		data = fiber.Map{"field": re.Field}
	}
	msg := err.Error()
	if errors.As(err, &re) {
		msg = re.Message
	}
	return c.Status(code).JSON(fiber.Map{"source": "nico", "message": msg, "data": data})
}

func currentUser(c *fiber.Ctx) error {
	who, _ := web.CallerOf(c)
	return c.JSON(fiber.Map{"id": who.ID, "username": who.User, "roles": who.Roles, "org": c.Params("org")})
}

// trayJSON is a tray as NICo lists it; position is left out when its
// slot is not known (a node of a Drydock design), as slot 0 is a slot.
func trayJSON(t trays.Tray) fiber.Map {
	out := fiber.Map{"id": t.ID, "componentId": t.ComponentID, "type": t.Type, "name": t.Name, "manufacturer": t.Manufacturer,
		"model": t.Model, "serialNumber": t.SerialNumber, "firmwareVersion": t.FirmwareVersion, "powerState": t.PowerState,
		"bmcs": t.BMCs, "rackId": t.RackID, "rackName": t.RackName}
	if t.PositionKnown {
		out["position"] = t.Position
	}
	return out
}

// listTrays: GET …/nico/tray, the filter as query parameters (lists comma
// separated or repeated), paged by pageNumber (from 1) and pageSize.
func listTrays(svc Trays) fiber.Handler {
	return func(c *fiber.Ctx) error {
		f := trays.Filter{RackID: c.Query("rackId"), RackName: c.Query("rackName"), IDs: listQuery(c, "ids"),
			ComponentIDs: listQuery(c, "componentIds"), Type: c.Query("type")}
		if err := f.Check(); err != nil {
			return badRequest(err)
		}
		page, size, err := paging(c)
		if err != nil {
			return badRequest(err)
		}
		all, err := svc.Trays(c.UserContext())
		if err != nil {
			return err
		}
		selected := trays.Select(f, all)
		out := []fiber.Map{}
		for i := (page - 1) * size; i < len(selected) && i < page*size; i++ {
			out = append(out, trayJSON(selected[i]))
		}
		pagination, _ := json.Marshal(fiber.Map{"pageNumber": page, "pageSize": size, "total": len(selected), "orderBy": nil})
		c.Set("X-Pagination", string(pagination))
		return c.JSON(out)
	}
}

func listQuery(c *fiber.Ctx, name string) []string {
	var out []string
	for _, v := range c.Context().QueryArgs().PeekMulti(name) {
		for _, item := range strings.Split(string(v), ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

func paging(c *fiber.Ctx) (page, size int, err error) {
	page, size = 1, 20
	if v := c.Query("pageNumber"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 {
			return 0, 0, &trays.RuleError{Field: "pageNumber", Message: fmt.Sprintf("%q is not a page number (from 1)", v)}
		}
	}
	if v := c.Query("pageSize"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > 100 {
			return 0, 0, &trays.RuleError{Field: "pageSize", Message: fmt.Sprintf("%q is not a page size (1 to 100)", v)}
		}
	}
	return page, size, nil
}

func badRequest(err error) error {
	return &statusError{code: fiber.StatusBadRequest, err: err}
}

// statusError carries an HTTP status with an error shapeError reads.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string   { return e.err.Error() }
func (e *statusError) HTTPStatus() int { return e.code }
func (e *statusError) Unwrap() error   { return e.err }

// updateFirmware: PATCH …/tray/firmware (and …/rack/firmware, which must
// name a rack), {"taskIds": [...]}.
func updateFirmware(svc Trays, rackLevel bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var r trays.Request
		if err := web.DecodeStrictJSON(c.Body(), &r); err != nil {
			return badRequest(&trays.RuleError{Field: "body", Message: err.Error()})
		}
		if r.SiteID == "" {
			return badRequest(&trays.RuleError{Field: "siteId", Message: "siteId is required"})
		}
		if rackLevel && (r.Filter == nil || r.Filter.RackID == "" && r.Filter.RackName == "") {
			return badRequest(&trays.RuleError{Field: "filter", Message: "a rack firmware update names its rack: filter.rackId or filter.rackName"})
		}
		ids, err := svc.Update(c.UserContext(), r)
		var re *trays.RuleError
		switch {
		case errors.As(err, &re), errors.Is(err, trays.ErrNothingSelected), errors.Is(err, trays.ErrUnsupported):
			return badRequest(err)
		case errors.Is(err, domain.ErrConflict) || len(ids) > 0 && err != nil:
			return &statusError{code: fiber.StatusConflict, err: err}
		case err != nil:
			return err
		}
		return c.JSON(fiber.Map{"taskIds": ids})
	}
}
