package nodes

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

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

func bootRoutes(app fiber.Router, cfg Config, done <-chan struct{}) {
	if cfg.BootConfigs != nil {
		app.Get("/boot.ipxe", ipxeScript(cfg.BootConfigs))
	}
	if cfg.BootRoot != nil {
		app.Get("/boot/*", renderedOr(cfg.BootConfigs, "/boot/", files(cfg.BootRoot, "/boot/", done)))
	}
	if cfg.AssetsRoot != nil {
		app.Get("/assets/*", files(cfg.AssetsRoot, "/assets/", done))
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

// files serves a directory read-only by fasthttp's file server: Range and
// conditional requests, sendfile(2), nothing buffered in memory (a 1 GiB
// image costs no more RAM than a script), and an open file kept for the
// next second's answers (bootFileHold). Names resolve inside root, so
// nothing outside it is reachable, symlinks included; directories are not
// listed.
func files(root *os.Root, prefix string, done <-chan struct{}) fiber.Handler {
	return filesFrom(web.RegularFiles(root), prefix, done)
}

// bootFileHold is how long the file server keeps a file it opened for the
// answers that follow: a storm's thousand kernels a second open it once,
// and a kernel replaced (renamed over) is served within about a second and
// a half (the cache is swept every half hold), not the old one for fifteen.
const bootFileHold = time.Second

// filesFrom is files over any fs.FS of regular files (web.RegularFiles). A
// name the file server could not serve is looked up again, to tell a
// missing file (404) from a system short of descriptors (503, try again).
func filesFrom(fsys fs.FS, prefix string, done <-chan struct{}) fiber.Handler {
	server := &fasthttp.FS{
		FS:              fsys,
		PathRewrite:     fasthttp.NewPathPrefixStripper(len(prefix) - 1),
		AcceptByteRange: true,
		CacheDuration:   bootFileHold,
		CleanStop:       closedWhen(done),
		PathNotFound:    func(*fasthttp.RequestCtx) {}, // answered below
	}
	send := server.NewRequestHandler()
	return func(c *fiber.Ctx) error {
		if conn, ok := c.Context().Conn().(fileConn); ok {
			conn.FileFollows()
		}
		send(c.Context())
		name := strings.TrimPrefix(c.Path(), prefix)
		switch c.Response().StatusCode() {
		case fiber.StatusNotFound:
		case fiber.StatusInternalServerError:
			// The file server's one failure past the open: a file it
			// keeps open, that another machine is reading, needs a
			// descriptor of its own for this answer, and none was given.
			return fmt.Errorf("%s cannot be read now: %w", name, web.ErrTryAgain)
		default:
			return nil
		}
		_, err := fs.Stat(fsys, name)
		switch {
		case listener.Shortage(err):
			return fmt.Errorf("%s cannot be opened now: %w", name, err)
		case err == nil:
			// There now and not a moment ago: the server was most likely
			// refused a descriptor, or the file was being replaced.
			return fmt.Errorf("%s was there a moment ago and cannot be opened now: %w", name, web.ErrTryAgain)
		}
		return fiber.NewError(fiber.StatusNotFound, "no file "+name)
	}
}

// closedWhen is a channel closed when done is: fasthttp wants its own to
// stop the cleaner of its cache of open files.
func closedWhen(done <-chan struct{}) chan struct{} {
	stop := make(chan struct{})
	go func() {
		<-done
		close(stop)
	}()
	return stop
}
