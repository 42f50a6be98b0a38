package web

import (
	"fmt"
	"net/http"

	"github.com/gofiber/fiber/v2"
)

// Operators authenticates the people behind write requests.
type Operators interface {
	// Authenticate returns the user's role, or ok false for a wrong name
	// or password.
	Authenticate(name, password string) (role string, ok bool)
}

// Roles, each allowed what the ones before it are.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
	RoleAdmin    = "admin"
)

func roleRank(role string) int {
	switch role {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// requireRole lets a request through if it carries HTTP basic credentials
// of a user whose role reaches need. Passwords are never logged.
func requireRole(ops Operators, need string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if ops == nil {
			return fiber.NewError(fiber.StatusForbidden, "no operator accounts are configured: add users: to the config (see slipway hash-password)")
		}
		user, pass, ok := basicAuth(c)
		if !ok {
			c.Set(fiber.HeaderWWWAuthenticate, `Basic realm="slipway"`)
			return fiber.NewError(fiber.StatusUnauthorized, "this endpoint needs a user name and password (HTTP basic authentication)")
		}
		role, ok := ops.Authenticate(user, pass)
		if !ok {
			c.Set(fiber.HeaderWWWAuthenticate, `Basic realm="slipway"`)
			return fiber.NewError(fiber.StatusUnauthorized, "wrong user name or password")
		}
		if roleRank(role) < roleRank(need) {
			return fiber.NewError(fiber.StatusForbidden, fmt.Sprintf("user %q has role %s; this needs %s", user, role, need))
		}
		c.Locals("user", user)
		return c.Next()
	}
}

// basicAuth parses the Authorization header the way net/http does.
func basicAuth(c *fiber.Ctx) (user, pass string, ok bool) {
	r := http.Request{Header: http.Header{"Authorization": {c.Get(fiber.HeaderAuthorization)}}}
	return r.BasicAuth()
}
