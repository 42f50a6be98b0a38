package web

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
)

// consoleFiles is the web console: plain HTML, CSS and an ES module,
// embedded, so the binary needs nothing else and fetches nothing.
//
//go:embed console
var consoleFiles embed.FS

// consoleRoutes serves the console under /console/ and sends / there.
func consoleRoutes(app *fiber.App) {
	sub, err := fs.Sub(consoleFiles, "console")
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
