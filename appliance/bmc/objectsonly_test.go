package bmc

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestObjectsOnlyRefusesAnythingButAnObject(t *testing.T) {
	tests := []struct {
		name, method, contentType, body string
		status                          int
		refused                         bool
	}{
		{"object", http.MethodGet, "application/json", `{"Id":"1"}`, 200, false},
		{"object after whitespace", http.MethodGet, "application/json; charset=utf-8", " \r\n\t{}", 200, false},
		{"empty body", http.MethodGet, "application/json", "", 200, false},
		{"null", http.MethodGet, "application/json", "null", 200, true},
		{"null with trailing bytes", http.MethodGet, "application/json", "nullm", 200, true},
		{"null labelled as text", http.MethodGet, "text/plain", " null", 200, true},
		{"array", http.MethodGet, "application/json", `[{}]`, 200, true},
		{"string", http.MethodGet, "", `"x"`, 200, true},
		{"error status left to gofish", http.MethodGet, "application/json", "null", 500, false},
		{"an action's answer left to gofish", http.MethodPost, "text/plain", "accepted", 202, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			req, _ := http.NewRequest(tt.method, srv.URL+"/redfish/v1/Systems", nil)
			resp, err := objectsOnly{http.DefaultTransport}.RoundTrip(req)
			if tt.refused {
				if err == nil || !strings.Contains(err.Error(), "/redfish/v1/Systems") {
					t.Fatalf("got %v, want an error naming the resource", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if want := strings.TrimLeft(tt.body, " \r\n\t"); tt.method == http.MethodGet && tt.status == 200 && string(got) != want {
				t.Errorf("body %q, want %q", got, want)
			} else if tt.status != 200 && string(got) != tt.body {
				t.Errorf("body %q, want %q untouched", got, tt.body)
			}
		})
	}
}
