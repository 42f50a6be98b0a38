package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

type testServer struct {
	*Server
	base string
	db   *store.Store
}

func startServer(t *testing.T, ready func(context.Context) error, extra ...func(fiber.Router)) testServer {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "slipway.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var routes func(fiber.Router)
	if len(extra) > 0 {
		routes = extra[0]
	}
	s, err := newServer(Config{Addr: netip.MustParseAddr("127.0.0.1"), Port: 0, Version: "test",
		Metrics: prometheus.NewRegistry(), Ready: ready, Machines: domain.Fleet{DB: db}, Auth: testAuth(t)}, routes)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return testServer{Server: s, base: "http://" + s.Addr().String(), db: db}
}

// get fetches url as the viewer vic (the open doors ignore credentials).
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return testkit.Request(t, http.MethodGet, url, "vic", "vic-password", "")
}

func TestProbesAndErrors(t *testing.T) {
	notReady := errors.New("store: database is locked")
	var readiness error
	s := startServer(t, func(context.Context) error { return readiness })
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
		{"unknown machine", "/api/v1/machines/ghost", nil, 404, `{"error":"no machine with id \"ghost\""}`},
		{"bad limit", "/api/v1/machines?limit=0", nil, 400, "limit must be a whole number from 1 to 1000"},
		{"version", "/api/v1/version", nil, 200, `{"version":"test"}`},
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

func TestMachineAPIPagesThroughTheStore(t *testing.T) {
	s := startServer(t, nil)
	for i := range 3 {
		err := s.db.Update(context.Background(), func(tx *store.Tx) error {
			_, err := tx.CreateMachine(store.Machine{ID: fmt.Sprintf("m%d", i), MACs: []string{fmt.Sprintf("52:54:00:00:00:0%d", i)},
				Source: "config", State: "created", StateJSON: `{"state":"created"}`, RackID: "r1", Tray: i}, "inventory")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var page struct {
		Machines []machineJSON `json:"machines"`
		Next     string        `json:"next"`
	}
	_, body := get(t, s.base+"/api/v1/machines?limit=2")
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Machines) != 2 || page.Next != "/api/v1/machines?after=m1&limit=2" || string(page.Machines[1].State) != `{"state":"created"}` {
		t.Fatalf("page = %s", body)
	}
	_, body = get(t, s.base+page.Next)
	if !strings.Contains(body, `"machine_id":"m2"`) || strings.Contains(body, `"next"`) {
		t.Fatalf("second page = %s", body)
	}
	_, body = get(t, s.base+"/api/v1/machines?state=created&limit=1")
	if !strings.Contains(body, `"next":"/api/v1/machines?after=m0\u0026limit=1\u0026state=created"`) {
		t.Fatalf("a filtered page's next link drops the filter: %s", body)
	}
	code, body := get(t, s.base+"/api/v1/machines/m1")
	if code != 200 || !strings.Contains(body, `"cause":"inventory"`) || !strings.Contains(body, `"rack_id":"r1"`) {
		t.Fatalf("machine = %d %s", code, body)
	}
}

func TestShutdownLetsInFlightRequestsFinish(t *testing.T) {
	started := make(chan struct{})
	s := startServer(t, nil, func(r fiber.Router) {
		r.Get("/slow", func(c *fiber.Ctx) error {
			close(started)
			time.Sleep(300 * time.Millisecond)
			return c.SendString("finished")
		})
	})
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

func TestBootFilesWithRangesInsideTheRoot(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ipxe.efi"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("TOP-SECRET-CONTENT"), 0o600)
	os.Symlink(secret, filepath.Join(dir, "link"))
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	s, err := New(Config{Addr: netip.MustParseAddr("127.0.0.1"), BootRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr().String()

	req, _ := http.NewRequest("GET", base+"/boot/ipxe.efi", nil)
	req.Header.Set("Range", "bytes=2-5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(body) != "2345" {
		t.Fatalf("range request: %d %q", resp.StatusCode, body)
	}
	for _, path := range []string{"/boot/link", "/boot/../../etc/passwd", "/boot/%2e%2e/secret", "/boot/", "/boot/missing"} {
		if code, body := get(t, base+path); code != 404 || strings.Contains(body, "TOP-SECRET") {
			t.Errorf("GET %s = %d %s", path, code, body)
		}
	}
}

// Request metrics label by method and route; fiber reuses the buffers its
// strings point into, so labels not copied turned into "GETT" or "POS" and
// /metrics failed once two series collided. Mixed concurrent traffic, then
// a scrape: it answers 200 and every label is a real method and route.
func TestMetricsAfterMixedTraffic(t *testing.T) {
	s := startServer(t, nil)
	paths := []struct{ method, path string }{
		{http.MethodGet, "/healthz"}, {http.MethodPost, "/api/v1/version"}, {http.MethodDelete, "/api/v1/machines/m1/heartbeats"},
		{http.MethodGet, "/api/v1/machines"}, {http.MethodPut, "/nope"}, {http.MethodPost, "/heartbeat"}, {http.MethodGet, "/readyz"},
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
	s := startServer(t, nil, func(r fiber.Router) {
		r.Get("/keep/:id", func(c *fiber.Ctx) error {
			kept = append(kept, c.Params("id"), c.Query("q"))
			return c.SendStatus(fiber.StatusNoContent)
		})
	})
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
