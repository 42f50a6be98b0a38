package console

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"github.com/slipway/slipway/web"
)

// consoleFiles is the web console: plain HTML, CSS and an ES module,
// embedded, so the binary needs nothing else and fetches nothing.
//
//go:embed files
var consoleFiles embed.FS

// New is the console as a mount: it serves the page under /console/ and
// sends / there. The page calls the native API, which checks who it is.
func New() web.Mount {
	return web.Mount{Name: "console", Routes: func(r fiber.Router, _ <-chan struct{}) { routes(r) }}
}

func routes(app fiber.Router) {
	sub, err := fs.Sub(consoleFiles, "files")
	if err != nil {
		panic("embedded console: " + err.Error()) // the directory is compiled in
	}
	app.Get("/", func(c *fiber.Ctx) error { return c.Redirect("/console/", fiber.StatusFound) })
	app.Use("/console", func(c *fiber.Ctx) error {
		if string(c.Request().URI().Path()) == "/console" { // its relative links need the slash
			return c.Redirect("/console/", fiber.StatusFound)
		}
		// The console is small and changes with the binary: always revalidate.
		c.Set(fiber.HeaderCacheControl, "no-cache")
		c.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		c.Set("X-Content-Type-Options", "nosniff")
		return c.Next()
	}, filesystem.New(filesystem.Config{Root: http.FS(sub), Index: "index.html"}))
}
