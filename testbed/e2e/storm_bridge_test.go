//go:build e2e

package e2e

import (
	"database/sql"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

// upstreamWatch is a storm's central broker (a real mosquitto with
// persistence, on a host of the LAN) and a durable QoS 1 subscriber on it
// (mosquitto_sub) that keeps, per machine, the state messages it hears.
type upstreamWatch struct {
	broker *testkit.Mosquitto
	mu     sync.Mutex
	states map[string][]string // machine id → its state messages heard, as time|state
	heard  int                 // messages of the site's bus heard (presence aside)
}

const stormSitePrefix = "sites/storm/"

func watchUpstream(t *testing.T, host testbed.Host) *upstreamWatch {
	t.Helper()
	addr, _, _ := strings.Cut(host.CIDR, "/")
	w := &upstreamWatch{states: map[string][]string{},
		broker: testkit.StartMosquittoOn(t, host.Command, addr, "persistence true", "autosave_interval 0", "max_queued_messages 0")}
	b := watchBus(t, host, addr+":"+strconv.Itoa(w.broker.Port), "-c", "-i", "storm-upstream", "-t", stormSitePrefix+"#")
	go func() {
		for line := range b.lines {
			w.keep(line)
		}
	}()
	return w
}

func (w *upstreamWatch) keep(line string) {
	topic, payload, _ := strings.Cut(line, " ")
	if !strings.HasPrefix(topic, stormSitePrefix) || strings.HasSuffix(topic, "/slipway/v1/site") {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.heard++
	if !strings.HasPrefix(topic, stormSitePrefix+"NICO/v1/machine/") {
		return
	}
	var m struct {
		ID    string          `json:"machine_id"`
		At    time.Time       `json:"timestamp"`
		State json.RawMessage `json:"managed_host_state"`
	}
	if json.Unmarshal([]byte(payload), &m) == nil && m.ID != "" {
		w.states[m.ID] = append(w.states[m.ID], stateKey(m.At, string(m.State)))
	}
}

func stateKey(at time.Time, state string) string {
	return at.UTC().Format(time.RFC3339Nano) + "|" + state
}

// stopAfter stops the broker d from now, and says when it did.
func (w *upstreamWatch) stopAfter(d time.Duration) <-chan time.Time {
	stopped := make(chan time.Time, 1)
	go func() {
		time.Sleep(d)
		w.broker.Stop()
		stopped <- time.Now()
	}()
	return stopped
}

// comeBack starts the broker again lasts after it stopped, and waits for
// the appliance's bridge to send what waited.
func (w *upstreamWatch) comeBack(t *testing.T, a *appliance, stopped time.Time, lasts time.Duration) {
	t.Helper()
	waitBridge(t, a, "the bridge to see the upstream gone", func(b bridgeStatus) bool { return !b.Connected })
	time.Sleep(time.Until(stopped.Add(lasts)))
	down := waitBridge(t, a, "the backlog", func(bridgeStatus) bool { return true })
	back := time.Now()
	w.broker.Restart()
	up := waitBridge(t, a, "the backlog to drain", func(b bridgeStatus) bool { return b.Connected && b.Backlog == 0 && b.CatchUp != nil })
	c := up.CatchUp
	t.Logf("upstream down for %s mid-storm; %d events waited on disk; back %s after it returned, the bridge sent them in %.1f s (%.0f events/s)",
		lasts.Round(time.Second), down.Backlog, time.Since(back).Round(time.Second), c.Seconds, c.PerSecond)
}

// check compares what the upstream's subscriber heard with the store:
// every machine's every state change, in the order it was committed (a
// repeat after a reconnect allowed, a gap never).
func (w *upstreamWatch) check(t *testing.T, dbPath string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := map[string][]string{}
	rows, err := db.Query(`SELECT machine_id, at, state_json FROM transitions ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, at, state string
		if err := rows.Scan(&id, &at, &state); err != nil {
			t.Fatal(err)
		}
		when, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = append(want[id], stateKey(when, state))
	}
	rows.Close()
	var committed int
	if err := db.QueryRow(`SELECT count(*) FROM outbox`).Scan(&committed); err != nil {
		t.Fatal(err)
	}
	complete := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for id, states := range want {
			heard := w.states[id]
			if !slices.Contains(heard, states[len(states)-1]) {
				return false
			}
		}
		return true
	}
	testkit.WaitForWithin(t, 2*time.Minute, "the upstream subscriber to hear every machine's last state", complete)
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, states := range want {
		if gap := firstGap(w.states[id], states); gap != "" {
			t.Fatalf("machine %s upstream: %s", id, gap)
		}
	}
	if w.heard < committed {
		t.Errorf("the upstream subscriber heard %d messages of the site's bus; %d events were committed", w.heard, committed)
	}
	t.Logf("upstream: %d machines' %d state changes all heard in order; %d messages heard for %d events committed", len(want), countAll(want), w.heard, committed)
}

// firstGap says where heard departs from want in order ("" if nowhere):
// each of want must be heard after the one before it; anything heard
// that is not next must be a repeat of one already heard.
func firstGap(heard, want []string) string {
	next := 0
	for _, h := range heard {
		switch {
		case next < len(want) && h == want[next]:
			next++
		case !slices.Contains(want[:next], h):
			if slices.Contains(want, h) {
				return "heard " + h + " before " + want[next]
			}
			return "heard " + h + ", never committed"
		}
	}
	if next < len(want) {
		return "never heard " + want[next]
	}
	return ""
}

func countAll(m map[string][]string) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}
