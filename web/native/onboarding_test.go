package native

import (
	"context"
	"strings"
	"testing"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

// An operator resets a machine's onboarding record: its heartbeats are
// forgotten, its lifecycle history is not; a viewer may not.
func TestResetOnboarding(t *testing.T) {
	ctx := context.Background()
	db, commit := testkit.OpenStore(t)
	inv, err := domain.NewInventory(ctx, domain.InventoryConfig{DB: db, Commit: commit, Discovery: domain.DiscoveryPolicy{Doors: domain.Doors}})
	if err != nil {
		t.Fatal(err)
	}
	for _, phase := range []domain.Phase{domain.PhaseStarted, domain.PhaseDone} {
		if _, err := inv.RecordHeartbeat(ctx, domain.Heartbeat{MAC: "52:54:00:00:00:31", Stage: domain.StageDisk, Phase: phase}); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := newTestServer(Services{Auth: testAuth(t), Onboarding: inv})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Shutdown(ctx) })
	s := struct {
		base string
		db   *store.Store
	}{"http://" + srv.Addr().String(), db}
	id := "mac-525400000031"
	if code, _ := testkit.Request(t, "DELETE", s.base+"/api/v1/machines/"+id+"/heartbeats", "vic", "vic-password", ""); code != 403 {
		t.Errorf("a viewer reset: %d", code)
	}
	code, body := testkit.Request(t, "DELETE", s.base+"/api/v1/machines/"+id+"/heartbeats", "otto", "otto-password", "")
	if code != 200 || !strings.Contains(body, `"heartbeats_forgotten":2`) {
		t.Fatalf("reset: %d %s", code, body)
	}
	if events, _ := s.db.StageEvents(context.Background(), "52:54:00:00:00:31"); len(events) != 0 {
		t.Errorf("%d heartbeats left", len(events))
	}
	if hist, _ := s.db.Transitions(context.Background(), id); len(hist) < 2 {
		t.Errorf("the lifecycle history went too: %v", hist)
	}
	if code, _ := testkit.Request(t, "DELETE", s.base+"/api/v1/machines/nope/heartbeats", "otto", "otto-password", ""); code != 404 {
		t.Errorf("reset of an unknown machine: %d", code)
	}
}
