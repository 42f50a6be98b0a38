package web

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/auth"
)

// Credentials checks what callers present: a Slipway token, or a user name
// and password. The auth service is one.
type Credentials interface {
	Verify(token string) (auth.Session, error)
	Check(name, password, client string) (auth.User, error)
}

// The roles, as routes need them.
const (
	RoleViewer   = auth.Viewer
	RoleOperator = auth.Operator
	RoleAdmin    = auth.Admin
)

// Cookies the console's session rides on.
const (
	SessionCookie = "slipway_session" // the token: HttpOnly, SameSite=Strict
	CSRFCookie    = "slipway_csrf"    // readable by the console's JS, which echoes it in CSRFHeader
	CSRFHeader    = "X-CSRF-Token"
)

// Caller is who made a request, and how they proved it.
type Caller struct {
	auth.Session
	// ByCookie: the session cookie carried it, so writes must echo the
	// CSRF cookie.
	ByCookie bool
}

const callerKey = "caller"

// CallerOf is the caller an authentication scheme found; ok is false on an
// open route.
func CallerOf(c *fiber.Ctx) (Caller, bool) {
	who, ok := c.Locals(callerKey).(Caller)
	return who, ok
}

// Scheme is one way a caller proves who they are. found is false when the
// request does not use it (the next scheme is tried); err is a credential
// it carried that does not hold.
type Scheme func(c *fiber.Ctx, creds Credentials) (who Caller, found bool, err error)

// BearerToken: Authorization: Bearer <Slipway token>.
func BearerToken(c *fiber.Ctx, creds Credentials) (Caller, bool, error) {
	token, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	if !ok {
		return Caller{}, false, nil
	}
	s, err := creds.Verify(token)
	return Caller{Session: s}, true, err
}

// AuthTokenHeader: X-Auth-Token: <Slipway token>, as Keystone-protected
// APIs (Drydock, StarlingX) are called.
func AuthTokenHeader(c *fiber.Ctx, creds Credentials) (Caller, bool, error) {
	token := c.Get("X-Auth-Token")
	if token == "" {
		return Caller{}, false, nil
	}
	s, err := creds.Verify(token)
	return Caller{Session: s}, true, err
}

// BasicAuth: HTTP basic authentication, for scripts; failed attempts count
// against the client as failed logins do.
func BasicAuth(c *fiber.Ctx, creds Credentials) (Caller, bool, error) {
	if !strings.HasPrefix(c.Get(fiber.HeaderAuthorization), "Basic ") {
		return Caller{}, false, nil
	}
	r := http.Request{Header: http.Header{"Authorization": {c.Get(fiber.HeaderAuthorization)}}}
	user, pass, _ := r.BasicAuth()
	u, err := creds.Check(user, pass, c.IP())
	return Caller{Session: auth.Session{User: u.Name, Role: u.Role, Roles: auth.NICoRoles(u.Role), MustChange: u.MustChange}}, true, err
}

// SessionCookieCSRF: the console's session cookie. Its writes must echo
// the CSRF cookie in a header, which another site's page cannot read.
func SessionCookieCSRF(c *fiber.Ctx, creds Credentials) (Caller, bool, error) {
	token := c.Cookies(SessionCookie)
	if token == "" {
		return Caller{}, false, nil
	}
	s, err := creds.Verify(token)
	if err == nil && !safeMethod(c.Method()) {
		want, got := c.Cookies(CSRFCookie), c.Get(CSRFHeader)
		if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
			return Caller{}, true, fiber.NewError(fiber.StatusForbidden, "missing or wrong "+CSRFHeader+" header (a cookie session's writes must echo the "+CSRFCookie+" cookie)")
		}
	}
	return Caller{Session: s, ByCookie: true}, true, err
}

func safeMethod(m string) bool {
	return m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions
}

// Authenticate finds who calls by the first of schemes the request uses;
// paths listed in open need nobody. A request that uses none is refused
// with a 401 that says how to log in.
func Authenticate(creds Credentials, howToLogIn string, open []string, schemes ...Scheme) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if slices.Contains(open, c.Path()) {
			return c.Next()
		}
		if creds == nil {
			return fiber.NewError(fiber.StatusForbidden, "no authentication is configured")
		}
		for _, scheme := range schemes {
			who, found, err := scheme(c, creds)
			if !found {
				continue
			}
			if err := CredentialError(c, err); err != nil {
				return err
			}
			c.Locals(callerKey, who)
			return c.Next()
		}
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="slipway", Basic realm="slipway"`)
		return fiber.NewError(fiber.StatusUnauthorized, howToLogIn)
	}
}

// CredentialError gives a credential that does not hold (a refused login,
// a token that expired) its HTTP answer; nil for nil.
func CredentialError(c *fiber.Ctx, err error) error {
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

// ResourceKey lets a request through when the key in header is the one
// keyOf gives for the resource the route names (Drydock's boot action
// keys, X-Bootaction-Key): a credential for one resource, not a user.
func ResourceKey(header string, keyOf func(c *fiber.Ctx) (string, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		got := c.Get(header)
		if got == "" {
			return fiber.NewError(fiber.StatusUnauthorized, "send the resource's key in "+header)
		}
		want, err := keyOf(c)
		if err != nil {
			return err
		}
		if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
			return fiber.NewError(fiber.StatusForbidden, "wrong "+header+" for this resource")
		}
		return c.Next()
	}
}

// RequireRole lets a request through if its caller's role reaches need.
func RequireRole(need string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		who, ok := CallerOf(c)
		if !ok {
			return fiber.NewError(fiber.StatusUnauthorized, "log in first")
		}
		if auth.Rank(who.Role) < auth.Rank(need) {
			return fiber.NewError(fiber.StatusForbidden, fmt.Sprintf("user %q has role %s; this needs %s", who.User, who.Role, need))
		}
		return c.Next()
	}
}
