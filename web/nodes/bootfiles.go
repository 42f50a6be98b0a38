package nodes

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/listener"
	"github.com/slipway/slipway/web"
)

// BootConfigs renders per-machine boot configuration for the caller that
// asks; a caller that is not the machine named gets a
// *domain.CallerRefusedError.
type BootConfigs interface {
	IPXE(ctx context.Context, mac domain.MAC, from domain.Caller) ([]byte, error)
	Lookup(ctx context.Context, name string, from domain.Caller) (content []byte, ok bool, err error)
}

func bootRoutes(app fiber.Router, cfg Config) {
	if cfg.BootConfigs != nil {
		app.Get("/boot.ipxe", ipxeScript(cfg.BootConfigs))
	}
	if cfg.BootRoot != nil {
		app.Get("/boot/*", renderedOr(cfg.BootConfigs, "/boot/", files(cfg.BootRoot, "/boot/")))
	}
	if cfg.AssetsRoot != nil {
		app.Get("/assets/*", files(cfg.AssetsRoot, "/assets/"))
	}
}

// ipxeScript answers iPXE with its machine's script. A MAC that does not
// parse is a 400; a machine without a profile still gets a script that
// tells the operator why and falls through to the next boot device.
func ipxeScript(configs BootConfigs) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var mac domain.MAC
		if raw := c.Query("mac"); raw != "" {
			var err error
			if mac, err = domain.ParseMAC(raw); err != nil {
				return fiber.NewError(fiber.StatusBadRequest, "mac: "+err.Error())
			}
		}
		script, err := configs.IPXE(c.UserContext(), mac, caller(c))
		if refused := new(domain.CallerRefusedError); errors.As(err, &refused) {
			return fiber.NewError(fiber.StatusForbidden, err.Error())
		}
		if script == nil && err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, "text/plain; charset=utf-8")
		return c.Send(script)
	}
}

// renderedOr serves rendered files (GRUB per-MAC configs) and hands every
// other name to next.
func renderedOr(configs BootConfigs, prefix string, next fiber.Handler) fiber.Handler {
	if configs == nil {
		return next
	}
	return func(c *fiber.Ctx) error {
		content, ok, err := configs.Lookup(c.UserContext(), strings.TrimPrefix(c.Path(), prefix), caller(c))
		if !ok {
			return next(c)
		}
		if refused := new(domain.CallerRefusedError); errors.As(err, &refused) {
			return fiber.NewError(fiber.StatusForbidden, err.Error())
		}
		if err != nil {
			return fiber.NewError(fiber.StatusNotFound, err.Error())
		}
		c.Set(fiber.HeaderContentType, "text/plain; charset=utf-8")
		return c.Send(content)
	}
}

// fileConn is a connection that sends a file answer's header with the
// file (the HTTP server's connections do).
type fileConn interface{ FileFollows() }

// files serves a directory read-only. The name is resolved inside an
// os.Root first, so nothing outside the root is reachable, symlinks
// included; directories are not listed. The file itself is then sent by
// fasthttp's file server: Range requests, conditional requests and
// sendfile(2), with nothing buffered in memory, so a 1 GiB image costs no
// more RAM than a script.
func files(root *os.Root, prefix string) fiber.Handler {
	dir := root.Name()
	return func(c *fiber.Ctx) error {
		name, err := url.PathUnescape(strings.TrimPrefix(string(c.Request().URI().PathOriginal()), prefix))
		if err != nil {
			return fiber.NewError(fiber.StatusBadRequest, "bad path")
		}
		name = strings.SplitN(name, "?", 2)[0]
		info, err := root.Stat(name)
		switch {
		case listener.Shortage(err):
			return fmt.Errorf("%s cannot be opened now: %w", name, err)
		case err != nil || !info.Mode().IsRegular():
			return fiber.NewError(fiber.StatusNotFound, "no file "+name)
		}
		if conn, ok := c.Context().Conn().(fileConn); ok {
			conn.FileFollows()
		}
		err = c.SendFile(filepath.Join(dir, filepath.Clean("/"+name)))
		if fe := new(fiber.Error); errors.As(err, &fe) && fe.Code == fiber.StatusNotFound {
			// It was there a moment ago: fasthttp, which says "not found"
			// for any failure to open, was most likely refused a
			// descriptor. A file replaced meanwhile is back by the next try.
			return fmt.Errorf("%s was there a moment ago and cannot be opened now: %w", name, web.ErrTryAgain)
		}
		return err
	}
}
