package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slipway/slipway/appliance/domain"

	"github.com/slipway/slipway/testbed/testkit"
)

// Two mounts whose prefixes share a start (/api/v1 and /api/v1.0, as the
// native API and Drydock do) keep their own authentication and error
// shapes: fiber's prefix match alone would run one's middleware for the
// other.
func TestMountsKeepTheirOwnAuthAndErrors(t *testing.T) {
	ok := func(r fiber.Router, _ <-chan struct{}) {
		r.Get("/thing", func(c *fiber.Ctx) error { who, _ := CallerOf(c); return c.SendString("hello " + who.User) })
	}
	dialectErrors := func(c *fiber.Ctx, code int, err error) error {
		return c.Status(code).JSON(fiber.Map{"message": err.Error(), "code": code, "type": "error"})
	}
	s := startServer(t, nil,
		Mount{Name: "native", Prefix: "/api/v1", Auth: Authenticate(fakeCredentials{}, "log in", nil, BearerToken), Routes: ok},
		Mount{Name: "dialect", Prefix: "/api/v1.0", Auth: Authenticate(fakeCredentials{}, "send X-Auth-Token", nil, AuthTokenHeader),
			Errors: dialectErrors, Routes: ok},
		Mount{Name: "keys", Prefix: "/keyed", Routes: func(r fiber.Router, _ <-chan struct{}) {
			r.Get("/:id", ResourceKey("X-Bootaction-Key", func(c *fiber.Ctx) (string, error) {
				if c.Params("id") != "a1" {
					return "", fiber.NewError(fiber.StatusNotFound, "no such action")
				}
				return "key-of-a1", nil
			}), func(c *fiber.Ctx) error { return c.SendString("action a1") })
		}},
	)
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		code    int
		want    string
	}{
		{"native by Bearer", "/api/v1/thing", map[string]string{"Authorization": "Bearer good-token"}, 200, "hello ann"},
		{"native refuses X-Auth-Token", "/api/v1/thing", map[string]string{"X-Auth-Token": "good-token"}, 401, `{"error":"log in"}`},
		{"dialect by X-Auth-Token", "/api/v1.0/thing", map[string]string{"X-Auth-Token": "good-token"}, 200, "hello ann"},
		{"dialect refuses Bearer, in its shape", "/api/v1.0/thing", map[string]string{"Authorization": "Bearer good-token"}, 401, `"message":"send X-Auth-Token"`},
		{"dialect's bad token, in its shape", "/api/v1.0/thing", map[string]string{"X-Auth-Token": "stale"}, 401, `"type":"error"`},
		{"dialect's unknown path, in its shape", "/api/v1.0/nope", map[string]string{"X-Auth-Token": "good-token"}, 404, `"message":"no such endpoint: GET /api/v1.0/nope"`},
		{"native's unknown path, in its shape", "/api/v1/nope", map[string]string{"Authorization": "Bearer good-token"}, 404, `{"error":"no such endpoint: GET /api/v1/nope"}`},
		{"resource key", "/keyed/a1", map[string]string{"X-Bootaction-Key": "key-of-a1"}, 200, "action a1"},
		{"wrong resource key", "/keyed/a1", map[string]string{"X-Bootaction-Key": "key-of-a2"}, 403, "wrong X-Bootaction-Key"},
		{"no resource key", "/keyed/a1", nil, 401, "send the resource's key"},
		{"unknown resource", "/keyed/a9", map[string]string{"X-Bootaction-Key": "x"}, 404, "no such action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.base+tt.path, nil)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			code, body := testkit.Do(t, req)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Fatalf("GET %s = %d %s; want %d with %s", tt.path, code, body, tt.code, tt.want)
			}
		})
	}
}

func TestARootMountCannotHaveItsOwnAuth(t *testing.T) {
	_, err := New(Config{Addr: netip.MustParseAddr("127.0.0.1")}, Mount{Name: "greedy", Auth: BasicAuthOnly(), Routes: func(fiber.Router, <-chan struct{}) {}})
	if err == nil || !strings.Contains(err.Error(), "mount greedy") {
		t.Fatalf("New = %v", err)
	}
}

// BasicAuthOnly is an authenticator for the test above.
func BasicAuthOnly() fiber.Handler { return Authenticate(fakeCredentials{}, "log in", nil, BasicAuth) }

func TestDecodeStrictJSON(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"a":1}`, true},
		{`{"a":1,"b":2}`, false},
		{`{"a":1} {"a":2}`, false},
		{`{"a":`, false},
		{``, false},
	} {
		var v struct{ A int }
		if err := DecodeStrictJSON([]byte(tc.body), &v); (err == nil) != tc.ok {
			t.Errorf("%q: %v", tc.body, err)
		}
	}
}

// A server-side failure is logged once, with a signature that the
// mount's shape may show its client to find that line.
func TestFailuresAreLoggedOnceWithTheirSignature(t *testing.T) {
	var logs strings.Builder
	s, err := New(Config{Addr: netip.MustParseAddr("127.0.0.1"), Metrics: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		Mount{Name: "dialect", Prefix: "/d",
			Errors: func(c *fiber.Ctx, code int, err error) error {
				return c.Status(code).SendString("failed, signature [" + ErrorSignature(c) + "]")
			},
			Routes: func(r fiber.Router, _ <-chan struct{}) {
				r.Get("/broken", func(*fiber.Ctx) error { return errors.New("disk on fire") })
			}})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	code, body := testkit.Request(t, http.MethodGet, "http://"+s.Addr().String()+"/d/broken", "", "", "")
	sig := strings.TrimSuffix(strings.TrimPrefix(body, "failed, signature ["), "]")
	if code != 500 || len(sig) != 8 {
		t.Fatalf("%d %q", code, body)
	}
	if n := strings.Count(logs.String(), "disk on fire"); n != 1 || !strings.Contains(logs.String(), "signature="+sig) {
		t.Fatalf("logged %d times, signature %s:\n%s", n, sig, logs.String())
	}
}

// A request that fails for a passing reason is told when to ask again,
// and a thousand of them are one warning that counts them, not a
// thousand errors in the log.
func TestPassingFailuresSayRetryAndAreLoggedOnce(t *testing.T) {
	var logs testkit.LockedBuffer
	s, err := New(Config{Addr: netip.MustParseAddr("127.0.0.1"), Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		Mount{Name: "files", Routes: func(r fiber.Router, _ <-chan struct{}) {
			r.Get("/kernel", func(*fiber.Ctx) error {
				return fmt.Errorf("kernel: %w", &os.PathError{Op: "openat", Path: "kernel", Err: syscall.EMFILE})
			})
		}},
		Mount{Name: "api", Prefix: "/api", Routes: func(r fiber.Router, _ <-chan struct{}) {
			r.Get("/thing", func(*fiber.Ctx) error { return fmt.Errorf("thing: %w", ErrTryAgain) })
		}})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	for range 20 {
		for _, path := range []string{"/kernel", "/api/thing"} {
			resp, err := http.Get("http://" + s.Addr().String() + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
				t.Fatalf("GET %s: %d, Retry-After %q", path, resp.StatusCode, resp.Header.Get("Retry-After"))
			}
		}
	}
	if n := strings.Count(logs.String(), "level="); n != 1 || !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "LimitNOFILE") {
		t.Fatalf("40 passing failures logged as %d lines:\n%s", n, logs.String())
	}
}

func TestStatusOf(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{fiber.NewError(fiber.StatusTeapot, "x"), fiber.StatusTeapot},
		{&NoEndpointError{Method: "GET", Path: "/x"}, fiber.StatusNotFound},
		{fmt.Errorf("record heartbeat: %w", domain.ErrStorageFull), fiber.StatusInsufficientStorage},
		{fmt.Errorf("record heartbeat: %w", domain.ErrStorageReadOnly), fiber.StatusServiceUnavailable},
		{fmt.Errorf("record heartbeat: %w", domain.ErrBusy), fiber.StatusServiceUnavailable},
		{errors.New("anything else"), fiber.StatusInternalServerError},
		{&os.PathError{Op: "openat", Path: "storm", Err: syscall.EMFILE}, fiber.StatusServiceUnavailable},
		{fmt.Errorf("vmlinuz: %w", ErrTryAgain), fiber.StatusServiceUnavailable},
	} {
		if got := StatusOf(tt.err); got != tt.want {
			t.Errorf("StatusOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// The access log says what the client got: a handler that had set one
// status and then failed is logged with the failure's, as answered.
func TestAccessLogSaysTheStatusAnswered(t *testing.T) {
	var logs testkit.LockedBuffer
	s, err := New(Config{Addr: netip.MustParseAddr("127.0.0.1"), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))},
		Mount{Name: "files", Routes: func(r fiber.Router, _ <-chan struct{}) {
			r.Get("/initrd", func(c *fiber.Ctx) error {
				c.Status(fiber.StatusNotFound) // as a file server says before the handler looks again
				return fmt.Errorf("initrd: %w", ErrTryAgain)
			})
		}})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	resp, err := http.Get("http://" + s.Addr().String() + "/initrd")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(logs.String(), "path=/initrd status=503") {
		t.Fatalf("answered %d, logged:\n%s", resp.StatusCode, logs.String())
	}
}
