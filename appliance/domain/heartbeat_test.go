package domain

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/store"
)

// A MAC keeps its newest heartbeats only, and heartbeats past the
// retention are forgotten: posting without end does not grow the store
// without end.
func TestHeartbeatsAreBounded(t *testing.T) {
	ctx := context.Background()
	var ahead time.Duration
	inv, db := testInventory(t, nil, func() time.Time { return time.Now().Add(ahead) })
	inv.cfg.HeartbeatsKept = 10
	useDiscovery(inv, DiscoveryPolicy{Doors: Doors})
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

// stageAnnouncer is an Announcer whose messages are the size of the
// broker's (a state or heartbeat message is about 300 bytes of JSON).
type stageAnnouncer struct{}

func (stageAnnouncer) StateMessage(id string, s State, encoded string, at time.Time) outbox.Message {
	if encoded == "" {
		encoded = s.JSON()
	}
	return outbox.Message{Topic: "state/" + id, Payload: []byte(encoded + strings.Repeat(" ", 200)), QoS: 1, Retain: true}
}

func (stageAnnouncer) StageMessage(r StageReport) outbox.Message {
	return outbox.Message{Topic: "stage/" + r.MachineID, Payload: []byte(strings.Repeat("x", 300)), QoS: 1, Retain: true}
}

func (stageAnnouncer) GoneMessages(string) []outbox.Message { return nil }

func (stageAnnouncer) OnboardingClearedMessage(id string) outbox.Message {
	return outbox.Message{Topic: "stage/" + id, Retain: true}
}

// BenchmarkRecordHeartbeat is a site onboarding at once: many machines,
// each posting its stages' heartbeats one after the other and reading the
// record each answer carries, as the storm's installers do.
// go test -run '^$' -bench RecordHeartbeat -benchtime 20000x ./appliance/domain/
func BenchmarkRecordHeartbeat(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "slipway.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	commit := db.NewCommitter(256)
	b.Cleanup(func() { commit.Close(); db.Close() })
	inv, err := NewInventory(ctx, InventoryConfig{DB: db, Commit: commit, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Announce: stageAnnouncer{}, Discovery: DiscoveryPolicy{Doors: Doors}})
	if err != nil {
		b.Fatal(err)
	}
	var machines atomic.Int64
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for {
			n := machines.Add(1)
			mac := MAC(fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", byte(n>>24), byte(n>>16), byte(n>>8), byte(n)))
			for _, stage := range Stages {
				for _, phase := range []Phase{PhaseStarted, PhaseDone} {
					if !pb.Next() {
						return
					}
					if _, err := inv.RecordHeartbeat(ctx, Heartbeat{MAC: mac, Stage: stage, Phase: phase, ClientIP: "10.0.0.1"}); err != nil {
						b.Error(err)
						return
					}
				}
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "heartbeats/s")
}
