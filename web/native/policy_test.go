package native

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/testbed/testkit"
)

func TestPolicyIsChangedByAdminsOnly(t *testing.T) {
	db, commit := testkit.OpenStore(t)
	inv, err := domain.NewInventory(context.Background(), domain.InventoryConfig{DB: db, Commit: commit, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s, err := newTestServer(Services{Policy: inv, Auth: testAuth(t)})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	url := "http://" + s.Addr().String() + "/api/v1/settings/policy"
	local := `{"unknown_machines":"local","discovery_doors":["dhcp"],"discovery_max_machines":50,"discovery_expire_after":"72h"}`
	for _, tt := range []struct {
		name, method, user, body string
		code                     int
		says                     string
	}{
		{"anyone reads it", http.MethodGet, "vic", "", 200, `"source":"file"`},
		{"a viewer cannot change it", http.MethodPut, "vic", local, 403, ""},
		{"an operator cannot change it", http.MethodPut, "otto", local, 403, ""},
		{"a wrong value names its setting", http.MethodPut, "ann", `{"unknown_machines":"pxe"}`, 400, "netboot.unknown_machines"},
		{"a duration that is not one", http.MethodPut, "ann", `{"unknown_machines":"local","discovery_expire_after":"3 days"}`, 400, "discovery_expire_after"},
		{"an unknown field", http.MethodPut, "ann", `{"unknown_machine":"local"}`, 400, "unknown_machine"},
		{"an admin changes it", http.MethodPut, "ann", local, 200, `"changed_by":"ann"`},
		{"in force for everyone", http.MethodGet, "vic", "", 200, `"unknown_machines":"local","discovery_doors":["dhcp"],"discovery_max_machines":50,"discovery_expire_after":"72h0m0s","source":"changed"`},
		{"back to the file's", http.MethodDelete, "ann", "", 200, `"policy":{"unknown_machines":"install"`},
	} {
		code, body := testkit.Request(t, tt.method, url, tt.user, tt.user+"-password", tt.body)
		if code != tt.code || !strings.Contains(body, tt.says) {
			t.Errorf("%s: %d %s", tt.name, code, body)
		}
	}
}
