package web

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// overTLSOnly keeps the given path prefixes off plain HTTP: a browser's
// GET or HEAD is sent (308) to the same path over TLS, so that a password
// or session cookie is never typed into a plain page; anything else is
// refused (403) with the URL to use, since its body has gone in clear
// already and a redirect would have the client send it again.
func overTLSOnly(prefixes []string, tlsPort int, own netip.Addr) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if c.Protocol() == "https" || !hasPrefix(c.Path(), prefixes) {
			return c.Next()
		}
		target := "https://" + redirectHost(c.Hostname(), own, tlsPort) + c.OriginalURL()
		if c.Method() == fiber.MethodGet || c.Method() == fiber.MethodHead {
			return c.Redirect(target, fiber.StatusPermanentRedirect)
		}
		return fiber.NewError(fiber.StatusForbidden, "this is served over HTTPS only: use "+target)
	}
}

func hasPrefix(path string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return under(path, p) })
}

// redirectHost is the host the client asked for (an address or a name
// only: the header is the client's to write) with the TLS port, else the
// box's own address.
func redirectHost(hostHeader string, own netip.Addr, port int) string {
	host, _, err := net.SplitHostPort(hostHeader)
	if err != nil {
		host = hostHeader
	}
	host = strings.Trim(host, "[]")
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a, uint16(port)).String()
	}
	if host == "" || strings.ContainsAny(host, "/\\@?#%: \t") {
		host = own.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}
