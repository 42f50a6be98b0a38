package native

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

func TestChartsOfTheLastHour(t *testing.T) {
	db, _ := testkit.OpenStore(t)
	err := db.Update(context.Background(), func(tx *store.Tx) error {
		_, err := tx.CreateMachine(store.Machine{ID: "m1", MACs: []string{"02:00:00:00:00:01"}, Source: "config", State: "created", StateJSON: `{"state":"created"}`}, "inventory")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := newTestServer(Services{Fleet: domain.Fleet{DB: db}, Auth: testAuth(t)})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	base := "http://" + s.Addr().String() + "/api/v1/charts"
	for _, bad := range []string{"?window=1m", "?window=2d", "?window=soon"} {
		if code, body := get(t, base+bad); code != 400 || !strings.Contains(body, "window must be a duration") {
			t.Errorf("GET charts%s = %d %s", bad, code, body)
		}
	}
	code, body := get(t, base)
	var got struct {
		Step   float64          `json:"step_seconds"`
		Points []time.Time      `json:"points"`
		States map[string][]int `json:"states"`
		Ready  map[string]any   `json:"time_to_ready"`
	}
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
		t.Fatalf("GET charts: %d %v %s", code, err, body)
	}
	created := got.States["created"]
	if got.Step != 60 || len(got.Points) != 61 || len(created) != 61 || created[60] != 1 || created[0] != 0 || got.Ready["machines"] != 0.0 {
		t.Errorf("step %v, %d points, created %v, to ready %v", got.Step, len(got.Points), created, got.Ready)
	}
}

func TestReadyJSON(t *testing.T) {
	if got := readyJSON(nil); len(got) != 1 || got["machines"] != 0 {
		t.Errorf("none: %v", got)
	}
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Second)
	}
	got := readyJSON(d)
	hist := got["histogram"].(fiber.Map)
	counts := hist["counts"].([]int)
	total := 0
	for _, c := range counts {
		total += c
	}
	if got["p50_seconds"] != 51.0 || got["p95_seconds"] != 96.0 || got["max_seconds"] != 100.0 || hist["bucket_seconds"] != 5.0 || total != 100 {
		t.Errorf("%v", got)
	}
}
