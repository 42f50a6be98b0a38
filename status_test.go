package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestStatusInWords(t *testing.T) {
	tests := []struct {
		name, code, body string
		want             []string
		failed           bool
	}{
		{"ready, no bridge", "200", `{"status":"ready"}`, []string{": ready", "uplink: none (bridge.url is not set)"}, false},
		{"ready, bridge down", "200", `{"status":"ready","bridge":{"url":"mqtt://central:1883","site":"rack-a","connected":false,"since":"2026-12-05T04:00:00Z",
			"backlog":1234,"lag_seconds":303.2,"sent":10,"dropped":0,"last_error":"connect to mqtt://central:1883: connection refused","last_error_at":"2026-12-05T04:05:00Z"}}`,
			[]string{"uplink to mqtt://central:1883 (site rack-a): DOWN since", "1234 events waiting, the oldest for 5m3s; 10 sent since start, 0 dropped", "last error (", "connection refused"}, false},
		{"not ready", "503", `{"status":"not ready","error":"store: database is locked"}`, []string{": not ready"}, true},
		{"not Slipway", "404", `<html>`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/readyz" {
					http.NotFound(w, r)
					return
				}
				code := map[string]int{"200": 200, "503": 503, "404": 404}[tt.code]
				w.WriteHeader(code)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			out, errOut, failed := run(t, "status", "--url", srv.URL)
			if failed != tt.failed {
				t.Fatalf("failed %v, want %v: %s%s", failed, tt.failed, out, errOut)
			}
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("missing %q in:\n%s", want, out)
				}
			}
		})
	}
	if _, errOut, failed := run(t, "status", "--url", "http://127.0.0.1:1"); !failed || !strings.Contains(errOut, "Slipway does not answer at http://127.0.0.1:1") {
		t.Errorf("nobody there: %s", errOut)
	}
}
