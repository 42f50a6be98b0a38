package domain

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway/store"
)

func stageEvent(id int64, mac, detail string) store.StageEvent {
	return store.StageEvent{ID: id, MAC: mac, MachineID: "m1", Stage: string(StageInstall), Phase: string(PhaseRunning),
		Detail: detail, At: time.Unix(id, 0)}
}

func details(c Client) (out []string) {
	for _, s := range c.Stages {
		out = append(out, s.Detail)
	}
	return out
}

// A record is extended only by the heartbeat right after its newest; any
// other order sends the answer to the store.
func TestRecentRecordsExtendOnlyInOrder(t *testing.T) {
	const mac = "52:54:00:00:0c:01"
	for _, tc := range []struct {
		name  string
		steps []struct{ id, previous int64 }
		want  []string // the last step's answer; nil: read the store
	}{
		{"a MAC's first heartbeat is a record", []struct{ id, previous int64 }{{5, 0}}, []string{"5"}},
		{"each next one extends it", []struct{ id, previous int64 }{{5, 0}, {9, 5}, {12, 9}}, []string{"5", "9", "12"}},
		{"an unknown history is read", []struct{ id, previous int64 }{{9, 5}}, nil},
		{"a gap is read", []struct{ id, previous int64 }{{5, 0}, {12, 9}}, nil},
		{"a late one gets the newer record", []struct{ id, previous int64 }{{5, 0}, {9, 5}, {7, 5}}, []string{"5", "9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecentRecords(time.Now)
			var got Client
			var ok bool
			for _, s := range tc.steps {
				got, ok = r.extend(stageEvent(s.id, mac, fmt.Sprint(s.id)), s.previous, 10, 1)
			}
			if tc.want == nil {
				if ok {
					t.Fatalf("answered %v, want a read of the store", details(got))
				}
				if _, cached, _ := r.get(mac); cached {
					t.Fatal("a record that missed a heartbeat is still remembered")
				}
				return
			}
			if !ok || !reflect.DeepEqual(details(got), tc.want) {
				t.Fatalf("answered %v (%v), want %v", details(got), ok, tc.want)
			}
		})
	}
}

// Records keep the newest heartbeats as the store does, hand out copies,
// and forget what went stale: a read older than forgetAll is not stored.
func TestRecentRecordsTrimCopyAndForget(t *testing.T) {
	const mac = "52:54:00:00:0c:02"
	r := newRecentRecords(time.Now)
	var c Client
	for id := int64(1); id <= 5; id++ {
		c, _ = r.extend(stageEvent(id, mac, fmt.Sprint(id)), id-1, 3, 1)
	}
	if got := details(c); !reflect.DeepEqual(got, []string{"3", "4", "5"}) {
		t.Fatalf("kept %v, want the newest three", got)
	}
	c.Stages[0].Detail = "changed by a caller"
	if again, _, _ := r.get(mac); again.Stages[0].Detail != "3" {
		t.Fatal("a caller's change reached the remembered record")
	}
	_, _, generation := r.get("52:54:00:00:0c:03")
	r.forgetAll()
	if _, ok, _ := r.get(mac); ok {
		t.Fatal("remembered after forgetAll")
	}
	r.put(Client{MAC: "52:54:00:00:0c:03"}, 7, generation)
	if _, ok, _ := r.get("52:54:00:00:0c:03"); ok {
		t.Fatal("a read from before forgetAll was stored")
	}
}

// The least recently used records go past the bound, and idle ones go.
func TestRecentRecordsAreBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRecentRecords(func() time.Time { return now })
	r.maxEntries = 4
	for i := range 6 {
		r.extend(stageEvent(int64(i+1), fmt.Sprintf("52:54:00:00:0d:%02x", i), ""), 0, 10, 1)
	}
	if len(r.byMAC) != 4 || r.entries != 4 {
		t.Fatalf("%d records of %d heartbeats held, want 4", len(r.byMAC), r.entries)
	}
	if _, ok, _ := r.get("52:54:00:00:0d:00"); ok {
		t.Fatal("the least recently used record is still held")
	}
	now = now.Add(recordIdle + time.Second)
	r.extend(stageEvent(10, "52:54:00:00:0d:10", ""), 0, 10, 1)
	if len(r.byMAC) != 1 {
		t.Fatalf("%d records held after the others were idle past %s, want 1", len(r.byMAC), recordIdle)
	}
}

// A heartbeat's answer is always what the store holds, through resets,
// renames and one MAC posting from many goroutines at once.
func TestHeartbeatAnswerIsTheStoredRecord(t *testing.T) {
	ctx := context.Background()
	inv, db := testInventory(t, nil, nil)
	inv.cfg.HeartbeatsKept = 6
	useDiscovery(inv, DiscoveryPolicy{Doors: Doors})
	mac := MAC("52:54:00:00:0e:01")
	stored := func() Client {
		t.Helper()
		events, err := db.StageEvents(ctx, string(mac))
		if err != nil {
			t.Fatal(err)
		}
		return clientRecord(events)
	}
	post := func(detail string) Client {
		t.Helper()
		c, err := inv.RecordHeartbeat(ctx, Heartbeat{MAC: mac, Stage: StageInstall, Phase: PhaseRunning, Detail: detail})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for i := range 8 {
		if got, want := post(fmt.Sprint(i)), stored(); !reflect.DeepEqual(got, want) {
			t.Fatalf("heartbeat %d answered %+v, the store holds %+v", i, got, want)
		}
	}
	id, _ := inv.Owner(mac)
	if _, err := inv.ResetOnboarding(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := post("after the reset"); !reflect.DeepEqual(details(got), []string{"after the reset"}) {
		t.Fatalf("after a reset the record is %v", details(got))
	}
	if _, _, err := inv.SyncListed(ctx, []Listed{{ID: id, MACs: []MAC{mac}, MachineInfo: MachineInfo{Hostname: "rack1-node7"}}}, "test"); err != nil {
		t.Fatal(err)
	}
	if got, _ := inv.Client(ctx, mac); got.Hostname != "rack1-node7" {
		t.Fatalf("after a rename the record names %q", got.Hostname)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 5 {
				if _, err := inv.RecordHeartbeat(ctx, Heartbeat{MAC: mac, Stage: StageInstall, Phase: PhaseRunning, Detail: fmt.Sprint(g, i)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got, want := post("last"), stored(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after concurrent heartbeats the answer is %v, the store holds %v", details(got), details(want))
	}
}

// What memory says of a heartbeat's target is checked against the store:
// a state another change moved (noted or not), a MAC given to another
// machine, a machine deleted.
func TestRememberedTargetsYieldToTheStore(t *testing.T) {
	ctx := context.Background()
	inv, db := testInventory(t, nil, nil)
	useDiscovery(inv, DiscoveryPolicy{Doors: Doors})
	mac := MAC("52:54:00:00:0f:01")
	beat := func(stage Stage, phase Phase) {
		t.Helper()
		if _, err := inv.RecordHeartbeat(ctx, Heartbeat{MAC: mac, Stage: stage, Phase: phase}); err != nil {
			t.Fatal(err)
		}
	}
	storedState := func(id string) string {
		t.Helper()
		m, err := db.Machine(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		st, err := ParseState(m.StateJSON)
		if err != nil {
			t.Fatal(err)
		}
		return st.Label()
	}
	beat(StageDisk, PhaseRunning)
	beat(StageComplete, PhaseDone)
	id, _ := inv.Owner(mac)
	if got := storedState(id); got != StateReady {
		t.Fatalf("after complete/done: %s", got)
	}
	// The store moves the machine behind memory's back (as a change whose
	// caller has not noted it yet): memory says ready, where a heartbeat
	// does not move a machine; the store says hostinit, where it does.
	if err := inv.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		_, err := tx.Transition(store.Transition{MachineID: id, From: StateReady, To: StateHostInit, StateJSON: HostInit(HostInitWaitingForDiscovery).JSON(), Cause: "test"}, Ready().JSON())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	beat(StageInstall, PhaseRunning)
	if got := storedState(id); got != "validation/install" {
		t.Fatalf("a heartbeat decided from a stale memory: the machine is %s, want validation/install", got)
	}
	// The MAC given to a listed machine: the next heartbeat is that machine's.
	if _, _, err := inv.SyncListed(ctx, []Listed{{ID: "n1", MachineInfo: MachineInfo{Hostname: "node-one"}}}, "test"); err != nil {
		t.Fatal(err)
	}
	if n, err := inv.GiveMACs(ctx, "n1", []MAC{mac}, "test"); err != nil || n != 1 {
		t.Fatalf("GiveMACs = %d, %v", n, err)
	}
	beat(StageDisk, PhaseRunning)
	events, err := db.StageEvents(ctx, string(mac))
	if err != nil {
		t.Fatal(err)
	}
	if last := events[len(events)-1]; last.MachineID != "n1" || last.Hostname != "node-one" {
		t.Fatalf("the heartbeat after the MAC moved was recorded for %s (%q)", last.MachineID, last.Hostname)
	}
}
