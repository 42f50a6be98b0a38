package web

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/tlscert"
	"github.com/slipway/slipway/testbed/testkit"
)

// Over TLS every route answers with the box's certificate; on plain HTTP
// the TLS-only prefixes send a browser over to TLS and refuse writes,
// while the rest (what firmware fetches) stays served.
func TestTLSListenerAndTLSOnlyPaths(t *testing.T) {
	cert, err := tlscert.Load(tlscert.Files{Dir: t.TempDir(), Addr: netip.MustParseAddr("127.0.0.1")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	root := func(r fiber.Router) {
		r.Get("/console/", func(c *fiber.Ctx) error { return c.SendString("console over " + c.Protocol()) })
		r.Post("/console/login", func(c *fiber.Ctx) error { return c.SendString("logged in") })
		r.Get("/boot.ipxe", func(c *fiber.Ctx) error { return c.SendString("#!ipxe") })
	}
	s, err := New(Config{Addr: netip.MustParseAddr("127.0.0.1"), TLS: &tls.Config{Certificates: []tls.Certificate{cert.TLS}},
		TLSPort: testkit.FreePort(t, "tcp"), TLSOnly: []string{"/console"}}, testAPI(root)...)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	plain, secure := "http://"+s.Addr().String(), "https://"+s.TLSAddr().String()

	pool := x509.NewCertPool()
	pool.AddCert(cert.TLS.Leaf)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	fetch := func(method, url string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header.Get("Location")
	}
	tests := []struct {
		name, method, url string
		code              int
		body, location    string
	}{
		{"the console over TLS", "GET", secure + "/console/", 200, "console over https", ""},
		{"the console on plain HTTP", "GET", plain + "/console/?x=1", 308, "", secure + "/console/?x=1"},
		{"a write on plain HTTP", "POST", plain + "/console/login", 403, "served over HTTPS only: use " + secure + "/console/login", ""},
		{"a write over TLS", "POST", secure + "/console/login", 200, "logged in", ""},
		{"firmware's fetch on plain HTTP", "GET", plain + "/boot.ipxe", 200, "#!ipxe", ""},
		{"the API on plain HTTP, not TLS-only here", "GET", plain + "/api/test/open", 200, "open", ""},
		{"the API over TLS", "GET", secure + "/api/test/open", 200, "open", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, location := fetch(tt.method, tt.url)
			if code != tt.code || !strings.Contains(body, tt.body) || location != tt.location {
				t.Fatalf("%d %q Location %q; want %d %q %q", code, body, location, tt.code, tt.body, tt.location)
			}
		})
	}
}

func TestRedirectHost(t *testing.T) {
	own := netip.MustParseAddr("10.88.0.1")
	for host, want := range map[string]string{
		"10.88.0.1:80":         "10.88.0.1:8443",
		"slipway.lab":          "slipway.lab:8443",
		"[fe80::1]:80":         "[fe80::1]:8443",
		"":                     "10.88.0.1:8443",
		"evil.example/x?y":     "10.88.0.1:8443",
		"user@evil.example:80": "10.88.0.1:8443",
	} {
		if got := redirectHost(host, own, 8443); got != want {
			t.Errorf("redirectHost(%q) = %q, want %q", host, got, want)
		}
	}
}
