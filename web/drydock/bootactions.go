package drydock

import (
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/deploy"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/web"
)

// KeyHeader carries a node's boot action key.
const KeyHeader = "X-Bootaction-Key"

// bootActionRoutes serve deploying nodes: their boot data and their
// reports, each proven by the node's key, never by a Keystone token.
func bootActionRoutes(r fiber.Router, dep Deploy) {
	nodeKey := keyCheck(func(c *fiber.Ctx) (string, error) { return dep.NodeKey(c.UserContext(), c.Params("hostname")) })
	actionKey := keyCheck(func(c *fiber.Ctx) (string, error) {
		key, err := dep.ActionKey(c.UserContext(), c.Params("id"))
		if errors.Is(err, domain.ErrNotFound) {
			return "", &falconError{code: fiber.StatusNotFound, title: "404 Not Found"}
		}
		return key, err
	})
	for _, files := range []string{"/bootactions/nodes/:hostname/:kind", "/bootdata/:hostname/:kind"} {
		r.Get(files, nodeKey, bootData(dep))
	}
	for _, report := range []string{"/bootactions/:id", "/bootactions/:id/", "/bootaction/:id"} {
		r.Post(report, actionKey, reportAction(dep))
	}
	r.Post("/bootactions/nodes/:hostname/builddata", nodeKey, postBuildData(dep))
}

// keyCheck wraps web.ResourceKey so that its refusals read as Drydock's:
// 401 without a key, 403 with a wrong one, 404 for what has no key.
func keyCheck(keyOf func(c *fiber.Ctx) (string, error)) fiber.Handler {
	check := web.ResourceKey(KeyHeader, func(c *fiber.Ctx) (string, error) {
		key, err := keyOf(c)
		if err == nil && key == "" {
			return "", &falconError{code: fiber.StatusNotFound, title: "404 Not Found", description: "no boot action context for this node"}
		}
		return key, err
	})
	return func(c *fiber.Ctx) error {
		err := check(c)
		switch web.StatusOf(err) {
		case fiber.StatusUnauthorized:
			c.Set(fiber.HeaderWWWAuthenticate, "Bootaction-Key")
			return &falconError{code: fiber.StatusUnauthorized, title: "Unauthorized", description: "No " + KeyHeader}
		case fiber.StatusForbidden:
			return &falconError{code: fiber.StatusForbidden, title: "Unauthorized", description: "Invalid " + KeyHeader}
		}
		return err
	}
}

// bootData: the node's unit or file assets as a gzipped tar.
func bootData(dep Deploy) fiber.Handler {
	return func(c *fiber.Ctx) error {
		kind := map[string]string{"units": "unit", "files": "file"}[c.Params("kind")]
		if kind == "" {
			return &falconError{code: fiber.StatusNotFound, title: "404 Not Found"}
		}
		host := c.Params("hostname")
		tarball, err := dep.BootData(c.UserContext(), host, kind)
		if errors.Is(err, deploy.ErrNoContext) {
			return &falconError{code: fiber.StatusNotFound, title: "404 Not Found", description: err.Error()}
		}
		if err != nil {
			return &falconError{code: fiber.StatusInternalServerError, title: "500 Internal Server Error", description: err.Error()}
		}
		c.Set(fiber.HeaderContentType, "application/gzip")
		c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="%s-%s.tar.gz"`, host, kind))
		return c.Send(tarball)
	}
}

// reportAction: POST a boot action's status and messages.
func reportAction(dep Deploy) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var body struct {
			Status  string           `json:"status"`
			Details []map[string]any `json:"details"`
		}
		if web.DecodeStrictJSON(c.Body(), &body) != nil {
			return badBody()
		}
		details := make([]deploy.Detail, 0, len(body.Details))
		for _, d := range body.Details {
			msg, okMsg := d["message"].(string)
			isErr, okErr := d["error"].(bool)
			if !okMsg || !okErr {
				return badBody()
			}
			extra := map[string]any{}
			for k, v := range d {
				if k != "message" && k != "error" {
					extra[k] = v
				}
			}
			details = append(details, deploy.Detail{Message: msg, Error: isErr, Extra: extra})
		}
		id := c.Params("id")
		ba, err := dep.Report(c.UserContext(), id, body.Status, details)
		switch {
		case errors.Is(err, deploy.ErrBadReport):
			return badBody()
		case errors.Is(err, deploy.ErrFinal):
			return appError(fiber.StatusConflict, "Action "+id+" status finalized, not available for update.")
		case errors.Is(err, domain.ErrNotFound):
			return &falconError{code: fiber.StatusNotFound, title: "404 Not Found"}
		case err != nil:
			return err
		}
		return c.JSON(fiber.Map{"node_name": ba.Node, "action_id": ba.ID, "action_name": ba.Name, "task_id": ba.TaskID,
			"action_status": ba.Status})
	}
}

func badBody() error {
	return &falconError{code: fiber.StatusBadRequest, title: "400 Bad Request", description: "Error processing body."}
}

// postBuildData: a node posts a hardware report (lshw -xml, lldpctl -f
// xml, …) as build data: ?generator=lshw, the body as it is, its
// Content-Type as the data format.
func postBuildData(dep Deploy) fiber.Handler {
	return func(c *fiber.Ctx) error {
		b := deploy.BuildData{Node: c.Params("hostname"), Generator: c.Query("generator"),
			Format: string(c.Request().Header.ContentType()), Element: string(c.Body())}
		err := dep.AddBuildData(c.UserContext(), b)
		if errors.Is(err, deploy.ErrBadReport) {
			return &falconError{code: fiber.StatusBadRequest, title: "400 Bad Request", description: err.Error()}
		}
		if err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusCreated)
	}
}
