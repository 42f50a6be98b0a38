package bmc

import (
	"strings"
	"testing"
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
