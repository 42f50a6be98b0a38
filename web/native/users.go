package native

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/auth"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/web"
)

// Auth is who may use the API and the console.
type Auth interface {
	web.Credentials
	Login(ctx context.Context, name, password, client string) (auth.Session, error)
	Sessions(ctx context.Context) ([]auth.SessionInfo, error)
	EndSession(ctx context.Context, id string) error
	Logout(ctx context.Context, s auth.Session) error
	Users() []auth.User
	AddUser(ctx context.Context, name, role, password string) (auth.User, error)
	SetPassword(ctx context.Context, name, password string) error
	DeleteUser(ctx context.Context, name string) error
}

// onlyPasswordChange holds a user on a one-time password to changing it
// (and looking at themselves, and logging out).
func onlyPasswordChange(c *fiber.Ctx) error {
	who, ok := web.CallerOf(c)
	if !ok || !who.MustChange {
		return c.Next()
	}
	switch c.Path() {
	case Prefix + "/me", Prefix + "/logout", Prefix + "/users/" + who.User + "/password":
		return c.Next()
	}
	return fiber.NewError(fiber.StatusForbidden, "change your one-time password first: PUT "+Prefix+"/users/"+who.User+"/password")
}

type loginBody struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func authRoutes(api fiber.Router, a Auth) {
	api.Post("/login", func(c *fiber.Ctx) error {
		var b loginBody
		if err := web.DecodeJSON(c, &b); err != nil {
			return err
		}
		s, err := a.Login(c.UserContext(), b.Username, b.Password, c.IP())
		if err := web.CredentialError(c, err); err != nil {
			return err
		}
		csrf := randomToken()
		setCookie(c, web.SessionCookie, s.Token, s.Expires, true)
		setCookie(c, web.CSRFCookie, csrf, s.Expires, false)
		return c.JSON(toSessionJSON(s, csrf))
	})
	api.Post("/logout", func(c *fiber.Ctx) error {
		who, _ := web.CallerOf(c)
		if who.ID != "" { // basic authentication has no session to end
			if err := a.Logout(c.UserContext(), who.Session); err != nil {
				return err
			}
		}
		setCookie(c, web.SessionCookie, "", time.Unix(0, 0), true)
		setCookie(c, web.CSRFCookie, "", time.Unix(0, 0), false)
		return c.SendStatus(fiber.StatusNoContent)
	})
	api.Get("/me", func(c *fiber.Ctx) error {
		who, _ := web.CallerOf(c)
		return c.JSON(toSessionJSON(who.Session, ""))
	})
	api.Get("/users", web.RequireRole(web.RoleAdmin), func(c *fiber.Ctx) error {
		users := a.Users()
		out := make([]userJSON, len(users))
		for i, u := range users {
			out[i] = toUserJSON(u)
		}
		return c.JSON(fiber.Map{"users": out})
	})
	api.Post("/users", web.RequireRole(web.RoleAdmin), func(c *fiber.Ctx) error {
		var b struct{ Name, Role, Password string }
		if err := web.DecodeJSON(c, &b); err != nil {
			return err
		}
		u, err := a.AddUser(c.UserContext(), b.Name, b.Role, b.Password)
		if err != nil {
			return userError(err)
		}
		return c.Status(fiber.StatusCreated).JSON(toUserJSON(u))
	})
	api.Delete("/users/:name", web.RequireRole(web.RoleAdmin), func(c *fiber.Ctx) error {
		if err := a.DeleteUser(c.UserContext(), c.Params("name")); err != nil {
			return userError(err)
		}
		return c.SendStatus(fiber.StatusNoContent)
	})
	api.Get("/sessions", web.RequireRole(web.RoleAdmin), func(c *fiber.Ctx) error {
		list, err := a.Sessions(c.UserContext())
		if err != nil {
			return err
		}
		who, _ := web.CallerOf(c)
		out := make([]sessionInfoJSON, len(list))
		for i, s := range list {
			out[i] = sessionInfoJSON{ID: s.ID, User: s.User, Client: s.Client, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, Current: s.ID == who.ID}
		}
		return c.JSON(fiber.Map{"sessions": out})
	})
	api.Delete("/sessions/:id", web.RequireRole(web.RoleAdmin), func(c *fiber.Ctx) error {
		err := a.EndSession(c.UserContext(), c.Params("id"))
		if errors.Is(err, auth.ErrNoSession) {
			return fiber.NewError(fiber.StatusNotFound, err.Error())
		}
		if err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusNoContent)
	})
	api.Put("/users/:name/password", func(c *fiber.Ctx) error {
		who, _ := web.CallerOf(c)
		if who.User != c.Params("name") && auth.Rank(who.Role) < auth.Rank(web.RoleAdmin) {
			return fiber.NewError(fiber.StatusForbidden, "only an admin may change another user's password")
		}
		var b struct{ Password string }
		if err := web.DecodeJSON(c, &b); err != nil {
			return err
		}
		if err := a.SetPassword(c.UserContext(), c.Params("name"), b.Password); err != nil {
			return userError(err)
		}
		// The change ended the user's sessions, the console's own too:
		// the console that made it gets a new one.
		if who.ByCookie && who.User == c.Params("name") {
			s, err := a.Login(c.UserContext(), who.User, b.Password, c.IP())
			if err != nil {
				return err
			}
			setCookie(c, web.SessionCookie, s.Token, s.Expires, true)
			setCookie(c, web.CSRFCookie, randomToken(), s.Expires, false)
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

// sessionInfoJSON is a live session as an admin lists it; current marks
// the caller's own.
type sessionInfoJSON struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Client    string    `json:"client"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Current   bool      `json:"current"`
}
