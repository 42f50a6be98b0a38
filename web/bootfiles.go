package web

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"

	"github.com/slipway/slipway/appliance/domain"
)

// BootConfigs renders per-machine boot configuration.
type BootConfigs interface {
	IPXE(ctx context.Context, mac domain.MAC) ([]byte, error)
	Lookup(ctx context.Context, name string) (content []byte, ok bool, err error)
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
		script, err := configs.IPXE(c.UserContext(), mac)
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
		content, ok, err := configs.Lookup(c.UserContext(), strings.TrimPrefix(c.Path(), prefix))
		if !ok {
			return next(c)
		}
		if err != nil {
			return fiber.NewError(fiber.StatusNotFound, err.Error())
		}
		c.Set(fiber.HeaderContentType, "text/plain; charset=utf-8")
		return c.Send(content)
	}
}

// files serves a directory read-only, with Range requests (net/http's
// ServeContent). Paths resolve inside an os.Root, so nothing outside the
// root is reachable, symlinks included; directories are not listed.
func files(root *os.Root, prefix string) fiber.Handler {
	return adaptor.HTTPHandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, prefix)
		f, err := root.Open(name)
		if err != nil {
			writeJSONError(w, http.StatusNotFound, "no boot file "+name)
			return
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil || !info.Mode().IsRegular() {
			writeJSONError(w, http.StatusNotFound, "no boot file "+name)
			return
		}
		http.ServeContent(w, r, info.Name(), info.ModTime(), f)
	})
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
