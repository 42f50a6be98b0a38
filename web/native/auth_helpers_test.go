package native

import (
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"context"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/slipway/slipway/appliance/auth"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/testbed/testkit"
	"github.com/slipway/slipway/web"
)

// testAuth is the real authentication service on a fresh store, with one
// user per role: ann (admin), otto (operator) and vic (viewer), each's
// password being their name and "-password".
func testAuth(t *testing.T) *auth.Service {
	t.Helper()
	db, commit := testkit.OpenStore(t)
	a, err := auth.New(context.Background(), auth.Config{DB: db, Commit: commit, KeyFile: filepath.Join(t.TempDir(), "session.key"),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), HashCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	for name, role := range map[string]string{"ann": auth.Admin, "otto": auth.Operator, "vic": auth.Viewer} {
		if _, err := a.AddUser(context.Background(), name, role, name+"-password"); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// emptyMachines is a machine inventory with no machines.
func emptyMachines(t *testing.T) MachineReader {
	db, _ := testkit.OpenStore(t)
	return domain.Fleet{DB: db}
}

// newTestServer binds the native API on a loopback port, with extra mounts
// beside it; the caller serves and shuts it down.
func newTestServer(svc Services, extra ...web.Mount) (*web.Server, error) {
	if svc.Version == "" {
		svc.Version = "test"
	}
	return web.New(web.Config{Addr: netip.MustParseAddr("127.0.0.1"), Metrics: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, append([]web.Mount{New(svc)}, extra...)...)
}
