package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway/appliance/auth"
	"github.com/slipway/slipway/testbed/testkit"
)

// fakeCredentials knows one token and one user.
type fakeCredentials struct{}

func (fakeCredentials) Verify(token string) (auth.Session, error) {
	if token != "good-token" {
		return auth.Session{}, auth.ErrUnauthenticated
	}
	return auth.Session{User: "ann", Role: auth.Admin}, nil
}

func (fakeCredentials) Check(name, password, _ string) (auth.User, error) {
	if name != "vic" || password != "vic-password" {
		return auth.User{}, auth.ErrBadCredentials
	}
	return auth.User{Name: "vic", Role: auth.Viewer}, nil
}

type testServer struct {
	*Server
	base string
}

// testAPI is a mount at /api/test behind Bearer and basic authentication,
// and extra routes at the root, for the server's own tests.
func testAPI(root func(fiber.Router)) []Mount {
	api := Mount{Name: "test", Prefix: "/api/test", Auth: Authenticate(fakeCredentials{}, "log in", []string{"/api/test/open"}, BearerToken, BasicAuth),
		Routes: func(r fiber.Router, _ <-chan struct{}) {
			r.Get("/open", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"open": true}) })
			r.Get("/who", func(c *fiber.Ctx) error { who, _ := CallerOf(c); return c.JSON(fiber.Map{"user": who.User}) })
			r.Post("/admin", RequireRole(RoleAdmin), func(c *fiber.Ctx) error { return c.SendStatus(fiber.StatusNoContent) })
		}}
	if root == nil {
		return []Mount{api}
	}
	return []Mount{api, {Name: "root", Routes: func(r fiber.Router, _ <-chan struct{}) { root(r) }}}
}

func startServer(t *testing.T, ready func(context.Context) error, mounts ...Mount) testServer {
	t.Helper()
	s, err := New(Config{Addr: netip.MustParseAddr("127.0.0.1"), Metrics: prometheus.NewRegistry(), Ready: ready}, mounts...)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return testServer{Server: s, base: "http://" + s.Addr().String()}
}

// get fetches url as the viewer vic (open routes ignore credentials).
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return testkit.Request(t, http.MethodGet, url, "vic", "vic-password", "")
}

func TestProbesAndErrors(t *testing.T) {
	notReady := errors.New("store: database is locked")
	var readiness error
	s := startServer(t, func(context.Context) error { return readiness }, testAPI(nil)...)
	tests := []struct {
		name     string
		path     string
		setReady error
		code     int
		contains string
	}{
		{"healthz", "/healthz", nil, 200, `{"status":"ok"}`},
		{"ready", "/readyz", nil, 200, `{"status":"ready"}`},
		{"not ready says why", "/readyz", notReady, 503, `"error":"store: database is locked"`},
		{"unknown path is JSON", "/nope", nil, 404, `{"error":"no such endpoint: GET /nope"}`},
		{"unknown path in a mount", "/api/test/nope", nil, 404, `{"error":"no such endpoint: GET /api/test/nope"}`},
		{"a caller by basic auth", "/api/test/who", nil, 200, `{"user":"vic"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			readiness = tt.setReady
			code, body := get(t, s.base+tt.path)
			if code != tt.code || !strings.Contains(body, tt.contains) {
				t.Fatalf("GET %s = %d %s; want %d containing %s", tt.path, code, body, tt.code, tt.contains)
			}
		})
	}
	_, metrics := get(t, s.base+"/metrics")
	for _, want := range []string{`slipway_http_requests_total{code="200",method="GET",route="/healthz"} 1`, `route="unmatched"`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestShutdownLetsInFlightRequestsFinish(t *testing.T) {
	started := make(chan struct{})
	s := startServer(t, nil, testAPI(func(r fiber.Router) {
		r.Get("/slow", func(c *fiber.Ctx) error {
			close(started)
			time.Sleep(300 * time.Millisecond) // a request still in flight when Shutdown comes
			return c.SendString("finished")
		})
	})...)
	result := make(chan string, 1)
	go func() {
		resp, err := http.Get(s.base + "/slow")
		if err != nil {
			result <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		result <- string(body)
	}()
	<-started
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := <-result; got != "finished" {
		t.Fatalf("in-flight request got %q", got)
	}
	if _, err := http.Get(s.base + "/healthz"); err == nil {
		t.Fatal("server still answers after Shutdown")
	}
}

// Request metrics label by method and route; fiber reuses the buffers its
// strings point into, so labels not copied turned into "GETT" or "POS" and
// /metrics failed once two series collided. Mixed concurrent traffic, then
// a scrape: it answers 200 and every label is a real method and route.
func TestMetricsAfterMixedTraffic(t *testing.T) {
	s := startServer(t, nil, testAPI(nil)...)
	paths := []struct{ method, path string }{
		{http.MethodGet, "/healthz"}, {http.MethodPost, "/api/test/open"}, {http.MethodDelete, "/api/test/who"},
		{http.MethodGet, "/api/test/who"}, {http.MethodPut, "/nope"}, {http.MethodPost, "/api/test/admin"}, {http.MethodGet, "/readyz"},
	}
	done := make(chan struct{})
	for w := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 40 {
				p := paths[(w+i)%len(paths)]
				req, _ := http.NewRequest(p.method, s.base+p.path, strings.NewReader("{}"))
				req.SetBasicAuth("vic", "vic-password")
				if resp, err := http.DefaultClient.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
	code, body := get(t, s.base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d: %s", code, body)
	}
	routes := map[string]bool{"unmatched": true}
	for _, r := range s.app.GetRoutes(true) {
		routes[r.Path] = true
	}
	methods := map[string]bool{"GET": true, "POST": true, "PUT": true, "DELETE": true, "HEAD": true}
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "slipway_http_requests_total{") {
			continue
		}
		labels := line[strings.Index(line, "{")+1 : strings.Index(line, "}")]
		for _, kv := range strings.Split(labels, ",") {
			name, value, _ := strings.Cut(kv, "=")
			value = strings.Trim(value, `"`)
			if (name == "method" && !methods[value]) || (name == "route" && !routes[value]) {
				t.Errorf("label %s=%q is neither a method nor a route: %s", name, value, line)
			}
		}
	}
}

// A handler's strings (path parameters, query values) are the handler's to
// keep: the domain keeps machine ids from operator actions as map keys, and
// fiber's default would rewrite them with the next request's bytes (a
// provisioned machine's cached state was lost that way).
func TestRequestStringsMayBeKept(t *testing.T) {
	var kept []string
	s := startServer(t, nil, testAPI(func(r fiber.Router) {
		r.Get("/keep/:id", func(c *fiber.Ctx) error {
			kept = append(kept, c.Params("id"), c.Query("q"))
			return c.SendStatus(fiber.StatusNoContent)
		})
	})...)
	var want []string
	for i := range 20 {
		id, q := fmt.Sprintf("machine-%02d", i), fmt.Sprintf("query-%02d", 19-i)
		want = append(want, id, q)
		if code, _ := get(t, s.base+"/keep/"+id+"?q="+q); code != fiber.StatusNoContent {
			t.Fatalf("GET /keep/%s = %d", id, code)
		}
	}
	if strings.Join(kept, " ") != strings.Join(want, " ") {
		t.Fatalf("kept strings changed under the handler:\n got %v\nwant %v", kept, want)
	}
}

// Connections from one address past the limit are refused, while others
// are still served: a host holding connections open starves nobody.
func TestConnectionsPerAddressAreBounded(t *testing.T) {
	s, err := New(Config{Addr: netip.MustParseAddr("127.0.0.1"), Metrics: prometheus.NewRegistry(), MaxConnectionsPerAddress: 2})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	time.Sleep(100 * time.Millisecond) // both accepted
	third, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	_ = third.SetReadDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(third, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	answer, _ := io.ReadAll(third)
	if !strings.Contains(string(answer), "429") {
		t.Fatalf("a third connection from one address got %q", answer)
	}
	// Once one of the two closes, the address is served again.
	held[0].Close()
	time.Sleep(100 * time.Millisecond)
	if code, _ := get(t, "http://"+s.Addr().String()+"/healthz"); code != 200 {
		t.Fatalf("after a connection closed: %d", code)
	}
}
