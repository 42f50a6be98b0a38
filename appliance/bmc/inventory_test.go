package bmc

import (
	"strings"
	"testing"

	"github.com/slipway/slipway/store"
	"github.com/stmcginnis/gofish/schemas"
)

func TestIDFor(t *testing.T) {
	tests := []struct{ endpoint, id string }{
		{"https://10.88.1.10", "bmc-10.88.1.10"},
		{"https://10.88.1.10/", "bmc-10.88.1.10"},
		{"http://127.0.0.1:8443", "bmc-127.0.0.1-8443"},
		{"https://[fd00::1]:443", "bmc-fd00--1-443"},
		{"https://bmc-r1-t1.lab", "bmc-bmc-r1-t1.lab"},
		{"https://a+b#c", "bmc-a-b"},
	}
	for _, tt := range tests {
		if got := IDFor(tt.endpoint); got != tt.id {
			t.Errorf("IDFor(%q) = %q, want %q", tt.endpoint, got, tt.id)
		}
	}
}

// Whatever the endpoint, its id is one MQTT topic level and one path
// segment, and the same endpoint always gets the same id.
func FuzzIDFor(f *testing.F) {
	for _, s := range []string{"https://10.88.1.10", "http://[::1]:80", "https://a+b/#", "x/y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, endpoint string) {
		id := IDFor(endpoint)
		if !strings.HasPrefix(id, "bmc-") || strings.ContainsAny(id, "/+#?% \x00") || id != IDFor(endpoint) {
			t.Fatalf("IDFor(%q) = %q", endpoint, id)
		}
	})
}

func TestStatusOfAStoredBMC(t *testing.T) {
	tests := []struct {
		name      string
		inventory string
		serial    string
		err       string
	}{
		{"never polled", "", "", ""},
		{"polled", `{"serial":"SN-1"}`, "SN-1", ""},
		{"unreadable", `{"serial":`, "", "stored inventory cannot be read"},
		{"older shape", `["a list"]`, "", "stored inventory cannot be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := statusOf(store.BMC{ID: "bmc-1", Endpoint: "https://10.88.1.10", BMCStatus: store.BMCStatus{Reachable: true, Inventory: tt.inventory}})
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
			if s.ID != "bmc-1" || !s.Reachable || s.Inventory.Serial != tt.serial {
				t.Fatalf("status %+v", s)
			}
		})
	}
}

func TestWorstHealth(t *testing.T) {
	for _, tc := range []struct {
		own, rollup schemas.Health
		want        string
	}{
		{schemas.OKHealth, schemas.OKHealth, "OK"},
		{schemas.OKHealth, schemas.CriticalHealth, "Critical"},
		{schemas.WarningHealth, schemas.OKHealth, "Warning"},
		{schemas.OKHealth, "", "OK"},
		{"", schemas.WarningHealth, "Warning"},
	} {
		if got := worstHealth(tc.own, tc.rollup); got != tc.want {
			t.Errorf("%q + rollup %q: %q, want %q", tc.own, tc.rollup, got, tc.want)
		}
	}
}
