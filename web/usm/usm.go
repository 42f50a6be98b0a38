package usm

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/release"
	"github.com/slipway/slipway/web"
)

// Prefix is where USM's API lives.
const Prefix = "/v1"

// Releases are the box's OS releases.
type Releases interface {
	Releases(ctx context.Context, show, rel string) ([]release.Release, error)
	Release(ctx context.Context, id string) (release.Release, error)
	Delete(ctx context.Context, ids []string) (string, error)
	NewUpload() (*release.Upload, error)
}

// Services are what the API answers from.
type Services struct {
	Auth     web.Credentials
	Releases Releases
	Deploys  Deploys
	Log      *slog.Logger
}

// New is USM's API as mounts: /v1, and its version document at the root.
func New(svc Services) []web.Mount {
	if svc.Log == nil {
		svc.Log = slog.Default()
	}
	return []web.Mount{
		{Name: "usm", Prefix: Prefix, Errors: shapeError, StreamedBodies: []string{"/release", "/upload"},
			Auth: web.Authenticate(svc.Auth, "The request you have made requires authentication.", nil, web.AuthTokenHeader),
			Routes: func(r fiber.Router, _ <-chan struct{}) {
				r.Use(authorize)
				releaseRoutes(r, svc.Releases)
				if svc.Deploys != nil {
					deployRoutes(r, svc.Deploys)
				}
			}},
		{Name: "usm-root", Routes: func(r fiber.Router, _ <-chan struct{}) {
			r.Get("/", func(c *fiber.Ctx) error {
				return c.JSON(fiber.Map{"name": "StarlingX USM API", "description": "StarlingX Unified Software Management API",
					"versions":        []fiber.Map{{"id": "v1", "links": []fiber.Map{{"href": c.BaseURL() + Prefix + "/", "rel": "self"}}}},
					"default_version": fiber.Map{"id": "v1", "links": []fiber.Map{{"href": c.BaseURL() + Prefix + "/", "rel": "self"}}}})
			})
		}},
	}
}

// authorize: any role reads; writing needs an operator or an admin.
func authorize(c *fiber.Ctx) error {
	if c.Method() == fiber.MethodGet || c.Method() == fiber.MethodHead {
		return c.Next()
	}
	who, _ := web.CallerOf(c)
	if who.Role != web.RoleOperator && who.Role != web.RoleAdmin {
		return &usmError{code: fiber.StatusForbidden, msg: "Not allowed, role operator or admin is needed"}
	}
	return c.Next()
}

// usmError is an error with USM's status code and words.
type usmError struct {
	code int
	msg  string
}

func (e *usmError) Error() string   { return e.msg }
func (e *usmError) HTTPStatus() int { return e.code }

// notAcceptable is USM's answer to a refused operation.
func notAcceptable(msg string) error { return &usmError{code: fiber.StatusNotAcceptable, msg: msg} }

// answer is USM's body: {"info","warning","error"}, with extra fields.
func answer(info, errText string, extra fiber.Map) fiber.Map {
	m := fiber.Map{"info": info, "warning": "", "error": errText}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// shapeError answers as USM does: a 401 as keystonemiddleware words it,
// every other error {"info","warning","error"}; a refusal (the model's
// release.Refusal) is 406, and a failure is 500 with the signature that
// its log line carries.
func shapeError(c *fiber.Ctx, code int, err error) error {
	var refusal release.Refusal // swdeploy's refusals are the same type
	switch {
	case code == fiber.StatusUnauthorized:
		return c.Status(code).JSON(fiber.Map{"error": fiber.Map{"code": code, "title": "Unauthorized",
			"message": "The request you have made requires authentication."}})
	case errors.As(err, &refusal):
		code = fiber.StatusNotAcceptable
	case code >= 500:
		return c.Status(code).JSON(answer("", "Internal error occurred. Error signature ["+web.ErrorSignature(c)+"]", nil))
	}
	var noRoute *web.NoEndpointError
	if errors.As(err, &noRoute) {
		return c.Status(code).JSON(answer("", http.StatusText(code)+": The resource could not be found.", nil))
	}
	return c.Status(code).JSON(answer("", err.Error(), nil))
}
