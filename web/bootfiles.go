package web

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
)

// bootFiles serves the TFTP root read-only under /boot/, for UEFI HTTP Boot
// and iPXE, with Range requests (net/http's ServeContent). Paths resolve
// inside an os.Root, so nothing outside the root is reachable, symlinks
// included; directories are not listed.
func bootFiles(root *os.Root) fiber.Handler {
	return adaptor.HTTPHandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/boot/")
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
