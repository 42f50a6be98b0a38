package native

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

type machinesServer struct {
	base string
	db   *store.Store
}

func startMachinesServer(t *testing.T) machinesServer {
	t.Helper()
	db, _ := testkit.OpenStore(t)
	s, err := newTestServer(Services{Machines: domain.Fleet{DB: db}, Auth: testAuth(t)})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return machinesServer{base: "http://" + s.Addr().String(), db: db}
}

// get fetches url as the viewer vic.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return testkit.Request(t, http.MethodGet, url, "vic", "vic-password", "")
}

func TestMachineAPIErrors(t *testing.T) {
	s := startMachinesServer(t)
	tests := []struct {
		name     string
		path     string
		code     int
		contains string
	}{
		{"unknown machine", "/api/v1/machines/ghost", 404, `{"error":"no machine with id \"ghost\""}`},
		{"bad limit", "/api/v1/machines?limit=0", 400, "limit must be a whole number from 1 to 1000"},
		{"unknown endpoint in the API", "/api/v1/nope", 404, `{"error":"no such endpoint: GET /api/v1/nope"}`},
		{"version", "/api/v1/version", 200, `{"version":"test"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, s.base+tt.path)
			if code != tt.code || !strings.Contains(body, tt.contains) {
				t.Fatalf("GET %s = %d %s; want %d containing %s", tt.path, code, body, tt.code, tt.contains)
			}
		})
	}
}

func TestMachineAPIPagesThroughTheStore(t *testing.T) {
	s := startMachinesServer(t)
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
