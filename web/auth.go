package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/auth"
	"github.com/slipway/slipway/appliance/domain"
)

// Auth is who may use the API and the console.
type Auth interface {
	Login(name, password, client string) (auth.Session, error)
	Verify(token string) (auth.Session, error)
	Logout(ctx context.Context, s auth.Session) error
	Check(name, password, client string) (auth.User, error)
	Users() []auth.User
	AddUser(ctx context.Context, name, role, password string) (auth.User, error)
	SetPassword(ctx context.Context, name, password string) error
	DeleteUser(ctx context.Context, name string) error
}

// The roles, as the routes need them.
const (
	RoleViewer   = auth.Viewer
	RoleOperator = auth.Operator
	RoleAdmin    = auth.Admin
)

// Cookies the console's session rides on.
const (
	sessionCookie = "slipway_session" // the token: HttpOnly, SameSite=Strict
	csrfCookie    = "slipway_csrf"    // readable by the console's JS, which echoes it in csrfHeader
	csrfHeader    = "X-CSRF-Token"
)

// caller is who made a request, and how they proved it.
type caller struct {
	auth.Session
	byCookie bool
}

const callerKey = "caller"

// authenticate finds who calls: a Bearer token, the session cookie, or
// HTTP basic credentials (for scripts; failed ones count against the
// client as failed logins do). Writes carried by the cookie must echo the
// CSRF cookie in a header. A user on a one-time password may only change
// it (and look at themselves, and log out).
func authenticate(a Auth, open ...string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		for _, p := range open {
			if c.Path() == p {
				return c.Next()
			}
		}
		if a == nil {
			return fiber.NewError(fiber.StatusForbidden, "no authentication is configured")
		}
		who, err := identify(c, a)
		if err != nil {
			return err
		}
		if who.byCookie && !safeMethod(c.Method()) {
			want, got := c.Cookies(csrfCookie), c.Get(csrfHeader)
			if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
				return fiber.NewError(fiber.StatusForbidden, "missing or wrong "+csrfHeader+" header (a cookie session's writes must echo the "+csrfCookie+" cookie)")
			}
		}
		if who.MustChange && !mayWhileMustChange(c, who.User) {
			return fiber.NewError(fiber.StatusForbidden, "change your one-time password first: PUT /api/v1/users/"+who.User+"/password")
		}
		c.Locals(callerKey, who)
		return c.Next()
	}
}

func identify(c *fiber.Ctx, a Auth) (caller, error) {
	header := c.Get(fiber.HeaderAuthorization)
	switch {
	case strings.HasPrefix(header, "Bearer "):
		s, err := a.Verify(strings.TrimPrefix(header, "Bearer "))
		return caller{Session: s}, authError(c, err)
	case strings.HasPrefix(header, "Basic "):
		user, pass, _ := basicAuth(c)
		u, err := a.Check(user, pass, c.IP())
		return caller{Session: auth.Session{User: u.Name, Role: u.Role, Roles: auth.NICoRoles(u.Role), MustChange: u.MustChange}}, authError(c, err)
	case c.Cookies(sessionCookie) != "":
		s, err := a.Verify(c.Cookies(sessionCookie))
		return caller{Session: s, byCookie: true}, authError(c, err)
	}
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="slipway", Basic realm="slipway"`)
	return caller{}, fiber.NewError(fiber.StatusUnauthorized, "log in: POST /api/v1/login, then send the token as Authorization: Bearer (or use HTTP basic authentication)")
}

// authError gives an authentication failure its HTTP answer.
func authError(c *fiber.Ctx, err error) error {
	var tooMany *auth.TooManyAttemptsError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooMany):
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(tooMany.RetryAfter.Round(time.Second).Seconds())))
		return fiber.NewError(fiber.StatusTooManyRequests, err.Error())
	case errors.Is(err, auth.ErrBadCredentials), errors.Is(err, auth.ErrUnauthenticated):
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="slipway", Basic realm="slipway"`)
		return fiber.NewError(fiber.StatusUnauthorized, err.Error())
	}
	return err
}

func safeMethod(m string) bool {
	return m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions
}

func mayWhileMustChange(c *fiber.Ctx, user string) bool {
	switch c.Path() {
	case "/api/v1/me", "/api/v1/logout", "/api/v1/users/" + user + "/password":
		return true
	}
	return false
}

// requireRole lets a request through if its caller's role reaches need.
func requireRole(need string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		who, ok := c.Locals(callerKey).(caller)
		if !ok {
			return fiber.NewError(fiber.StatusUnauthorized, "log in first")
		}
		if auth.Rank(who.Role) < auth.Rank(need) {
			return fiber.NewError(fiber.StatusForbidden, fmt.Sprintf("user %q has role %s; this needs %s", who.User, who.Role, need))
		}
		return c.Next()
	}
}

// basicAuth parses the Authorization header the way net/http does.
func basicAuth(c *fiber.Ctx) (user, pass string, ok bool) {
	r := http.Request{Header: http.Header{"Authorization": {c.Get(fiber.HeaderAuthorization)}}}
	return r.BasicAuth()
}

type loginBody struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type sessionJSON struct {
	auth.Session
	CSRF string `json:"csrf_token,omitempty"`
}

func authRoutes(api fiber.Router, a Auth) {
	api.Post("/login", func(c *fiber.Ctx) error {
		var b loginBody
		if err := decodeBody(c, &b); err != nil {
			return err
		}
		s, err := a.Login(b.Username, b.Password, c.IP())
		if err := authError(c, err); err != nil {
			return err
		}
		csrf := randomToken()
		setCookie(c, sessionCookie, s.Token, s.Expires, true)
		setCookie(c, csrfCookie, csrf, s.Expires, false)
		return c.JSON(sessionJSON{Session: s, CSRF: csrf})
	})
	api.Post("/logout", func(c *fiber.Ctx) error {
		who := c.Locals(callerKey).(caller)
		if who.ID != "" { // basic authentication has no session to end
			if err := a.Logout(c.UserContext(), who.Session); err != nil {
				return err
			}
		}
		setCookie(c, sessionCookie, "", time.Unix(0, 0), true)
		setCookie(c, csrfCookie, "", time.Unix(0, 0), false)
		return c.SendStatus(fiber.StatusNoContent)
	})
	api.Get("/me", func(c *fiber.Ctx) error { return c.JSON(c.Locals(callerKey).(caller).Session) })
	api.Get("/users", requireRole(RoleAdmin), func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"users": a.Users()}) })
	api.Post("/users", requireRole(RoleAdmin), func(c *fiber.Ctx) error {
		var b struct{ Name, Role, Password string }
		if err := decodeBody(c, &b); err != nil {
			return err
		}
		u, err := a.AddUser(c.UserContext(), b.Name, b.Role, b.Password)
		if err != nil {
			return userError(err)
		}
		return c.Status(fiber.StatusCreated).JSON(u)
	})
	api.Delete("/users/:name", requireRole(RoleAdmin), func(c *fiber.Ctx) error {
		if err := a.DeleteUser(c.UserContext(), c.Params("name")); err != nil {
			return userError(err)
		}
		return c.SendStatus(fiber.StatusNoContent)
	})
	api.Put("/users/:name/password", func(c *fiber.Ctx) error {
		who := c.Locals(callerKey).(caller)
		if who.User != c.Params("name") && auth.Rank(who.Role) < auth.Rank(RoleAdmin) {
			return fiber.NewError(fiber.StatusForbidden, "only an admin may change another user's password")
		}
		var b struct{ Password string }
		if err := decodeBody(c, &b); err != nil {
			return err
		}
		if err := a.SetPassword(c.UserContext(), c.Params("name"), b.Password); err != nil {
			return userError(err)
		}
		return c.SendStatus(fiber.StatusNoContent)
	})
}

// userError: unknown 404, taken or config-owned 409, else a bad request.
func userError(err error) error {
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return fiber.NewError(fiber.StatusNotFound, err.Error())
	case errors.Is(err, domain.ErrConflict), errors.Is(err, auth.ErrConfigUser):
		return fiber.NewError(fiber.StatusConflict, err.Error())
	}
	return fiber.NewError(fiber.StatusBadRequest, err.Error())
}

func setCookie(c *fiber.Ctx, name, value string, expires time.Time, httpOnly bool) {
	c.Cookie(&fiber.Cookie{Name: name, Value: value, Path: "/", Expires: expires, HTTPOnly: httpOnly,
		SameSite: fiber.CookieSameSiteStrictMode, Secure: c.Protocol() == "https"})
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
