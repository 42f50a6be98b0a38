//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

// kill -9 while 1,000 simulated machines heartbeat through their stages,
// then start again: every heartbeat that was acknowledged is in /clients,
// no committed event is left unpublished, every machine's retained state
// on the bus is its state in the store, and what subscribers saw before the
// crash came in the order the store recorded it.
func TestKill9WhileAFleetOnboards(t *testing.T) {
	requireCommands(t, map[string]string{"mosquitto_sub": "mosquitto-clients"})
	const machines = 1000
	tcp := testkit.FreePorts(t, "tcp", 3)
	httpPort, mqttPort := tcp[0], tcp[1]
	config := fmt.Sprintf(`
lan: {interface: lo, address: 127.0.0.1/8}
data_dir: DATA_DIR
# The whole fleet posts from 127.0.0.1: one address may use every connection.
http: {port: %d, max_connections_per_address: 4096}
https: {port: %d}
tftp: {root: TFTP_ROOT, port: %d}
mqtt: {port: %d, websocket_port: 0}
dhcp: {mode: "off"}
netboot: {router_advertisements: false}
# The fleet reaches Slipway by heartbeats alone: they make its machines.
discovery: {doors: [dhcp, boot, heartbeat]}
users:
`+e2eUserYAML, httpPort, tcp[2], testkit.FreePort(t, "udp"), mqttPort)
	a := startServe(t, testbed.Host{}, config)
	a.url = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitReady(t, a)

	live := watchBus(t, testbed.Host{}, fmt.Sprintf("127.0.0.1:%d", mqttPort), "-t", "NICO/#") // subscribed once it returns
	acked := make(map[string][]string)                                                         // MAC → "stage/phase" acknowledged
	var mu sync.Mutex
	var total atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range machines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mac := fmt.Sprintf("02:cc:00:00:%02x:%02x", i>>8, i&0xff)
			for _, stage := range domain.Stages {
				for _, phase := range []domain.Phase{domain.PhaseStarted, domain.PhaseDone} {
					if testbed.Heartbeat(ctx, a.url, mac, string(stage), string(phase), "") != nil {
						return // the appliance is gone
					}
					mu.Lock()
					acked[mac] = append(acked[mac], string(stage)+"/"+string(phase))
					mu.Unlock()
					total.Add(1)
				}
			}
		}()
	}
	for total.Load() < 4000 {
		time.Sleep(10 * time.Millisecond)
	}
	a.cmd.Process.Kill() // SIGKILL: no stop, no flush
	<-a.done
	cancel()
	wg.Wait()
	t.Logf("killed after %d acknowledged heartbeats", total.Load())
	seenBefore := statesByMachine(live.drain())
	if len(seenBefore) == 0 {
		t.Fatal("the live subscriber saw no state message before the crash: the order check would prove nothing")
	}
	t.Logf("a live subscriber saw state messages of %d machines before the crash", len(seenBefore))

	a.launch(t)
	waitReady(t, a)

	// Every acknowledged heartbeat survived.
	var clients map[string]struct {
		Stages []struct{ Stage, Phase string }
	}
	getJSON(t, a.url+"/clients", &clients)
	lost := 0
	for mac, beats := range acked {
		have := map[string]bool{}
		for _, s := range clients[mac].Stages {
			have[s.Stage+"/"+s.Phase] = true
		}
		for _, b := range beats {
			if !have[b] {
				lost++
				t.Errorf("%s: acknowledged heartbeat %s is lost", mac, b)
			}
		}
	}

	// Every machine's retained state is its stored state, and what was seen
	// live came in stored order.
	retained := retainedStates(t, mqttPort)
	var page struct {
		Machines []struct {
			ID    string          `json:"machine_id"`
			State json.RawMessage `json:"managed_host_state"`
		} `json:"machines"`
	}
	getJSON(t, a.url+"/api/v1/machines?limit=1000", &page)
	if len(page.Machines) == 0 {
		t.Fatal("no machines after the restart")
	}
	for _, m := range page.Machines {
		if got := retained[m.ID]; got != string(m.State) {
			t.Errorf("%s: retained %s, stored %s", m.ID, got, m.State)
		}
		var detail struct {
			History []struct {
				State json.RawMessage `json:"managed_host_state"`
			} `json:"history"`
		}
		getJSON(t, a.url+"/api/v1/machines/"+m.ID, &detail)
		stored := make([]string, len(detail.History))
		for i, h := range detail.History {
			stored[i] = string(h.State)
		}
		if !isSubsequence(seenBefore[m.ID], stored) {
			t.Errorf("%s: seen before the crash in another order than stored:\nseen   %v\nstored %v", m.ID, seenBefore[m.ID], stored)
		}
	}
	a.stop(t)
	db, err := store.Open(context.Background(), filepath.Join(a.dataDir, "slipway.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	relayAt, _, err := db.Cursor(context.Background(), "mqtt")
	if err != nil {
		t.Fatal(err)
	}
	if pending, err := db.EventsAfter(context.Background(), relayAt, 10); err != nil || len(pending) != 0 {
		t.Fatalf("%d events still unpublished after the restart (%v)", len(pending), err)
	}
	t.Logf("%d machines, %d acknowledged heartbeats, %d lost, %d retained states checked", len(acked), total.Load(), lost, len(page.Machines))
	for _, line := range strings.Split(a.logs(), "\n") {
		if strings.Contains(line, "had not published") {
			t.Log("after the restart: " + line)
		}
	}
}

// statesByMachine groups "topic payload" lines of state messages by
// machine, keeping their order.
func statesByMachine(lines []string) map[string][]string {
	seen := map[string][]string{}
	for _, line := range lines {
		_, payload, _ := strings.Cut(line, " ")
		if id, state, ok := parseStateMessage(payload); ok {
			seen[id] = append(seen[id], state)
		}
	}
	return seen
}

// parseStateMessage is a state message's machine and raw state.
func parseStateMessage(payload string) (id, state string, ok bool) {
	var msg struct {
		ID    string          `json:"machine_id"`
		State json.RawMessage `json:"managed_host_state"`
	}
	if json.Unmarshal([]byte(payload), &msg) != nil || msg.ID == "" {
		return "", "", false
	}
	return msg.ID, string(msg.State), true
}

// retainedStates subscribes afresh and returns each machine's retained state.
func retainedStates(t *testing.T, port int) map[string]string {
	t.Helper()
	out, _ := testbed.Host{}.Run(context.Background(), "mosquitto_sub", "-h", "127.0.0.1", "-p", fmt.Sprint(port),
		"-t", "NICO/#", "-q", "1", "-W", "3")
	states := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if id, state, ok := parseStateMessage(line); ok {
			states[id] = state
		}
	}
	return states
}

// isSubsequence says whether every element of seen appears in stored, in order.
func isSubsequence(seen, stored []string) bool {
	j := 0
	for _, s := range seen {
		for j < len(stored) && stored[j] != s {
			j++
		}
		if j == len(stored) {
			return false
		}
		j++
	}
	return true
}

// getJSON fetches url as the e2e user and decodes it into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(e2eUser, e2ePassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
