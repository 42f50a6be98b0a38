package usm

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/swdeploy"
)

// Deploys are the deploy lifecycle.
type Deploys interface {
	Precheck(ctx context.Context, releaseID string, force bool, options []string) (swdeploy.Precheck, error)
	Start(ctx context.Context, releaseID string, force bool, options []string) (string, error)
	Current(ctx context.Context) (swdeploy.Deploy, bool, error)
	DeployHost(ctx context.Context, host string, force bool) (string, error)
	RollbackHost(ctx context.Context, host string, force bool) (string, error)
	Activate(ctx context.Context) (string, error)
	ActivateRollback(ctx context.Context) (string, error)
	Complete(ctx context.Context) (string, error)
	Abort(ctx context.Context) (string, error)
	Delete(ctx context.Context) (string, error)
}

// deployRequest is precheck's and start's request, as pecan merges it:
// the JSON body's keys and the query's; flags count by presence ("force":
// false still forces, as in USM).
type deployRequest struct {
	releases []string
	force    bool
	options  []string
}

func parseDeployRequest(c *fiber.Ctx) (deployRequest, error) {
	var body map[string]json.RawMessage
	if len(c.Body()) > 0 {
		if err := json.Unmarshal(c.Body(), &body); err != nil {
			return deployRequest{}, notAcceptable("the body is not a JSON object: " + err.Error())
		}
	}
	_, forced := body["force"]
	r := deployRequest{force: forced || c.Context().QueryArgs().Has("force")}
	if raw, ok := body["options"]; ok {
		if err := json.Unmarshal(raw, &r.options); err != nil {
			return r, notAcceptable(`options: a list of "key=value" strings`)
		}
	}
	for _, o := range c.Context().QueryArgs().PeekMulti("options") {
		r.options = append(r.options, string(o))
	}
	if id := c.Params("id"); id != "" {
		r.releases = []string{id}
	} else if raw, ok := body["releases"]; ok {
		if err := json.Unmarshal(raw, &r.releases); err != nil {
			return r, notAcceptable("releases: a list of release ids")
		}
	}
	if len(r.releases) != 1 {
		return r, notAcceptable("name one release to deploy")
	}
	return r, nil
}

func deployRoutes(r fiber.Router, deploys Deploys) {
	precheck := func(c *fiber.Ctx) error {
		req, err := parseDeployRequest(c)
		if err != nil {
			return err
		}
		pre, err := deploys.Precheck(c.UserContext(), req.releases[0], req.force, req.options)
		if err != nil {
			return err
		}
		body := answer(pre.Info, "", fiber.Map{"system_healthy": pre.Healthy, "major_release": pre.Major, "reboot_required": pre.RebootRequired,
			"prepatched_iso": false, "apply_operation": false})
		if !pre.Healthy {
			body["error"] = (&swdeploy.UnhealthyError{Precheck: pre}).Error()
			return c.Status(fiber.StatusNotAcceptable).JSON(body)
		}
		return c.JSON(body)
	}
	start := func(c *fiber.Ctx) error {
		req, err := parseDeployRequest(c)
		if err != nil {
			return err
		}
		info, err := deploys.Start(c.UserContext(), req.releases[0], req.force, req.options)
		var unhealthy *swdeploy.UnhealthyError
		if errors.As(err, &unhealthy) {
			return c.Status(fiber.StatusNotAcceptable).JSON(answer(unhealthy.Info, unhealthy.Error(), fiber.Map{"system_healthy": false}))
		}
		return reply(c, info, err)
	}
	// stx.12.0 names the release in the path; later releases in the body.
	r.Post("/deploy/:id/precheck", precheck)
	r.Post("/deploy/precheck", precheck)
	r.Post("/deploy/:id/start", start)
	r.Post("/deploy/start", start)
	for path, op := range map[string]func(context.Context) (string, error){
		"/deploy/activate": deploys.Activate, "/deploy/activate_rollback": deploys.ActivateRollback,
		"/deploy/complete": deploys.Complete, "/deploy/abort": deploys.Abort,
	} {
		r.Post(path, func(c *fiber.Ctx) error {
			info, err := op(c.UserContext())
			return reply(c, info, err)
		})
	}
	r.Delete("/deploy", func(c *fiber.Ctx) error {
		info, err := deploys.Delete(c.UserContext())
		return reply(c, info, err)
	})
	r.Get("/deploy", func(c *fiber.Ctx) error {
		d, ok, err := deploys.Current(c.UserContext())
		if err != nil || !ok {
			return emptyList(c, err)
		}
		if (c.Query("from_release") != "" && c.Query("from_release") != d.FromVersion) || (c.Query("to_release") != "" && c.Query("to_release") != d.ToVersion) {
			return c.JSON([]any{})
		}
		return c.JSON([]fiber.Map{deployJSON(d)})
	})
	r.Get("/deploy_host", func(c *fiber.Ctx) error {
		d, ok, err := deploys.Current(c.UserContext())
		if err != nil || !ok {
			return emptyList(c, err)
		}
		out := make([]fiber.Map, len(d.Hosts))
		for i, h := range d.Hosts {
			out[i] = fiber.Map{"hostname": h.Hostname, "software_release": d.SoftwareRelease(h), "target_release": d.ToVersion,
				"reboot_required": d.RebootRequired, "host_state": h.State}
		}
		return c.JSON(out)
	})
	host := func(rollback, force bool) fiber.Handler {
		return func(c *fiber.Ctx) error {
			op := deploys.DeployHost
			if rollback {
				op = deploys.RollbackHost
			}
			info, err := op(c.UserContext(), c.Params("host"), force)
			return reply(c, info, err)
		}
	}
	r.Post("/deploy_host/:host", host(false, false))
	r.Post("/deploy_host/:host/force", host(false, true))
	r.Post("/deploy_host/:host/rollback", host(true, false))
	r.Post("/deploy_host/:host/rollback/force", host(true, true))
	// sysinv and the VIM ask the deploy path; the API reference names the
	// other.
	upgrade := func(c *fiber.Ctx) error {
		d, ok, err := deploys.Current(c.UserContext())
		if err != nil {
			return err
		}
		if !ok {
			return c.JSON(nil)
		}
		return c.JSON(fiber.Map{"from_release": majorMinor(d.FromVersion), "to_release": majorMinor(d.ToVersion), "state": d.State})
	}
	r.Get("/deploy/software_upgrade", upgrade)
	r.Get("/software_upgrade", upgrade)
	// One box is one controller: always in sync with itself.
	r.Get("/software/in_sync_controller", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"in_sync": true}) })
}

func reply(c *fiber.Ctx, info string, err error) error {
	if err != nil {
		return err
	}
	return c.JSON(answer(info, "", nil))
}

func emptyList(c *fiber.Ctx, err error) error {
	if err != nil {
		return err
	}
	return c.JSON([]any{})
}

func deployJSON(d swdeploy.Deploy) fiber.Map {
	opts := map[string]string{}
	for k, v := range d.Options {
		opts[k] = v
	}
	return fiber.Map{"from_release": d.FromVersion, "to_release": d.ToVersion, "feed_repo": "", "commit_id": "",
		"reboot_required": d.RebootRequired, "state": d.State, "options": opts, "major_release": d.Major,
		"prepatched_iso": false, "apply_operation": false}
}

func majorMinor(v string) string {
	if i := strings.LastIndex(v, "."); i > 0 {
		return v[:i]
	}
	return v
}
