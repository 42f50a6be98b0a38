package drydock

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/deploy"
	"github.com/slipway/slipway/appliance/design"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/web"
)

// Prefix is where Drydock's API lives.
const Prefix = "/api/v1.0"

// Deploy is the model's deployment service, as the routes use it.
type Deploy interface {
	Submit(ctx context.Context, p deploy.Params) (task.Task, error)
	Design(ctx context.Context, ref string) (*design.Design, error)
	Select(ctx context.Context, ref string, f *design.NodeFilter) ([]string, error)
	NodeBuildData(ctx context.Context, node string, latest bool) ([]deploy.BuildData, error)
	TaskBuildData(ctx context.Context, taskID string) ([]deploy.BuildData, error)
	AddBuildData(ctx context.Context, b deploy.BuildData) error
	BootData(ctx context.Context, node, assetType string) ([]byte, error)
	NodeKey(ctx context.Context, node string) (string, error)
	ActionKey(ctx context.Context, id string) (string, error)
	Report(ctx context.Context, id, status string, details []deploy.Detail) (deploy.BootAction, error)
	Purge(ctx context.Context, before time.Time) (int64, error)
}

// Tasks reads stored tasks.
type Tasks interface {
	Task(ctx context.Context, id string) (task.Task, error)
	TasksOfKind(ctx context.Context, prefix string, limit int) ([]task.Task, error)
}

// BMCs are the BMCs' last findings.
type BMCs interface {
	Statuses() []bmc.Status
}

// Services are what the API answers from.
type Services struct {
	Auth     web.Credentials
	Deploy   Deploy
	Tasks    Tasks
	Machines domain.MachinePager
	BMCs     BMCs
	// Health says whether the box serves (the store answers).
	Health func(ctx context.Context) error
}

// New is Drydock's API as mounts: /api/v1.0 and GET /versions.
func New(svc Services) []web.Mount {
	return []web.Mount{
		{Name: "drydock", Prefix: Prefix, Errors: shapeError, Routes: func(r fiber.Router, _ <-chan struct{}) { routes(r, svc) }},
		{Name: "drydock-versions", Prefix: "/versions", Errors: shapeError, Routes: func(r fiber.Router, _ <-chan struct{}) {
			r.Use(requestID)
			r.Get("/", func(c *fiber.Ctx) error {
				return c.JSON(fiber.Map{"v1.0": fiber.Map{"path": Prefix, "status": "stable"}})
			})
		}},
	}
}

func routes(r fiber.Router, svc Services) {
	r.Use(requestID)
	r.Get("/health", func(c *fiber.Ctx) error {
		if svc.Health != nil && svc.Health(c.UserContext()) != nil {
			return c.SendStatus(fiber.StatusServiceUnavailable)
		}
		return c.SendStatus(fiber.StatusNoContent)
	})
	bootActionRoutes(r, svc.Deploy)
	admin := []fiber.Handler{web.Authenticate(svc.Auth, "Unauthenticated", nil, web.AuthTokenHeader, web.BearerToken), web.RequireRole(web.RoleAdmin)}
	r.Get("/health/extended", append(admin, func(c *fiber.Ctx) error {
		st := status("Success", 200, "Drydock health", nil)
		if svc.Health != nil {
			if err := svc.Health(c.UserContext()); err != nil {
				return c.Status(fiber.StatusServiceUnavailable).JSON(status("Failure", 503, err.Error(), nil))
			}
		}
		return c.JSON(st)
	})...)
	r.Post("/validatedesign", append(admin, validateDesign(svc.Deploy))...)
	r.Get("/nodes", append(admin, listNodes(svc.Machines, svc.BMCs))...)
	r.Get("/nodes/:hostname/builddata", append(admin, nodeBuildData(svc.Deploy))...)
	r.Post("/nodefilter", append(admin, nodeFilter(svc.Deploy))...)
	r.Get("/tasks", append(admin, listTasks(svc.Tasks))...)
	r.Post("/tasks", append(admin, createTask(svc.Deploy))...)
	r.Delete("/tasks", append(admin, purgeTasks(svc.Deploy))...)
	r.Get("/tasks/:id", append(admin, getTask(svc.Tasks, svc.Deploy))...)
	r.Get("/tasks/:id/builddata", append(admin, taskBuildData(svc.Tasks, svc.Deploy))...)
}

// requestID gives every answer its X-Drydock-Req, as Drydock does.
func requestID(c *fiber.Ctx) error {
	c.Set("X-Drydock-Req", uuid.NewString())
	return c.Next()
}

// appError is Drydock's own error: {"type":"error","message",...}.
func appError(code int, msg string) error { return fiber.NewError(code, msg) }

// falconError is an error falcon raises: {"title","description"}.
type falconError struct {
	code               int
	title, description string
}

func (e *falconError) Error() string   { return e.title + ": " + e.description }
func (e *falconError) HTTPStatus() int { return e.code }

// shapeError answers an error as Drydock does: its app errors with type,
// message and retry; the falcon ones (routing, boot actions) with title.
func shapeError(c *fiber.Ctx, code int, err error) error {
	var fe *falconError
	if errors.As(err, &fe) {
		body := fiber.Map{"title": fe.title}
		if fe.description != "" {
			body["description"] = fe.description
		}
		return c.Status(fe.code).JSON(body)
	}
	msg := err.Error()
	var noRoute *web.NoEndpointError
	if errors.As(err, &noRoute) {
		// No such route: falcon's own answer.
		return c.Status(code).JSON(fiber.Map{"title": strconv.Itoa(code) + " " + http.StatusText(code)})
	}
	var fibErr *fiber.Error
	switch code {
	case fiber.StatusUnauthorized:
		c.Set("X-Slipway-Detail", "send a Slipway token (POST /api/v1/login) in X-Auth-Token")
		msg = "Unauthenticated"
	case fiber.StatusForbidden:
		c.Set("X-Slipway-Detail", msg)
		msg = "Forbidden"
	}
	if code >= 500 && !errors.As(err, &fibErr) {
		msg = "Unknown error: " + msg
	}
	return c.Status(code).JSON(fiber.Map{"type": "error", "message": msg, "retry": false})
}

// pythonTime is a time as Drydock writes it (Python's str(datetime)).
func pythonTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02 15:04:05.000000")
}
