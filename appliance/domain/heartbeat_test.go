package domain

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A MAC keeps its newest heartbeats only, and heartbeats past the
// retention are forgotten: posting without end does not grow the store
// without end.
func TestHeartbeatsAreBounded(t *testing.T) {
	ctx := context.Background()
	var ahead time.Duration
	inv, db := testInventory(t, nil, func() time.Time { return time.Now().Add(ahead) })
	inv.cfg.HeartbeatsKept = 10
	inv.cfg.Discovery.Doors = Doors
	mac := MAC("52:54:00:00:0b:01")
	for i := range 25 {
		if _, err := inv.RecordHeartbeat(ctx, Heartbeat{MAC: mac, Stage: StageInstall, Phase: PhaseRunning, Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	events, err := db.StageEvents(ctx, string(mac))
	if err != nil || len(events) != 10 || events[0].Detail != "15" || events[9].Detail != "24" {
		t.Fatalf("%d heartbeats kept (%v), want the newest ten", len(events), err)
	}
	// The store's clock is the real one: prune as if a day had passed.
	ahead = 24 * time.Hour
	pruning, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { inv.RunHeartbeatPruning(pruning, time.Hour, 10*time.Millisecond); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(events) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		events, _ = db.StageEvents(ctx, string(mac))
	}
	stop()
	<-done
	if len(events) != 0 {
		t.Fatalf("%d heartbeats older than the retention kept", len(events))
	}
}
