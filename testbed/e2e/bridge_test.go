//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway/broker/nicoschema"
	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

// The upstream broker (a real mosquitto, with persistence, as a site's
// central broker runs) is stopped while machines heartbeat; Slipway is
// killed with -9 while it is down, started again, and the machines go on;
// then the upstream comes back. A subscriber there (mosquitto_sub, a
// durable QoS 1 session) hears every heartbeat of every machine, in the
// order each machine sent it, and every machine's last state as Slipway
// has it.
func TestBridgeKeepsEveryEventThroughAnOutageAndKill9(t *testing.T) {
	requireCommands(t, map[string]string{"mosquitto_sub": "mosquitto-clients", "mosquitto": "mosquitto"})
	const machines, rounds = 100, 15 // five rounds before the outage, five during it, five after the kill
	up := testkit.StartMosquitto(t, "persistence true", "autosave_interval 0", "max_queued_messages 0")
	watcher := watchBus(t, testbed.Host{}, fmt.Sprintf("127.0.0.1:%d", up.Port), "-c", "-i", "e2e-watcher", "-t", "sites/#")

	a := startBridged(t, "e2e", up.URL())
	// A second site on the same upstream: its events arrive beside the first's.
	second := startBridged(t, "e2e-2", up.URL())
	const secondMachines, secondRounds = 20, 5
	postHeartbeats(t, second, secondMachines, 0, secondRounds, secondMAC)

	heartbeats := func(from, to int) {
		t.Helper()
		postHeartbeats(t, a, machines, from, to, bridgeMAC)
	}
	heartbeats(0, 5)
	up.Stop()
	heartbeats(5, 10)
	// A heartbeat is a stage event at least (and a state event if it moved).
	down := waitBridge(t, a, "the backlog while the upstream is down", func(b bridgeStatus) bool { return !b.Connected && b.Backlog >= machines*5 })
	t.Logf("upstream down: %d events wait (%s)", down.Backlog, down.LastError)
	if out, err := exec.Command(slipwayBinary, "status", "--url", a.url).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "(site e2e): DOWN since") || !strings.Contains(string(out), "events waiting") {
		t.Errorf("slipway status while the upstream is down: %v\n%s", err, out)
	}

	a.cmd.Process.Kill() // SIGKILL: no stop, no flush
	<-a.done
	a.launch(t)
	waitReady(t, a)
	after := waitBridge(t, a, "the backlog to be what it was before the kill", func(b bridgeStatus) bool { return b.Backlog >= down.Backlog })
	heartbeats(10, rounds)
	waiting := waitBridge(t, a, "the backlog to grow", func(b bridgeStatus) bool { return b.Backlog >= after.Backlog+machines*5 })

	up.Restart()
	drained := waitBridge(t, a, "the backlog to drain", func(b bridgeStatus) bool { return b.Connected && b.Backlog == 0 })
	t.Logf("upstream back: %d events drained; %d sent in all", waiting.Backlog, drained.Sent)
	if m := regexp.MustCompile(`bridge sent the events that waited for the uplink".* events=(\d+) took=(\S+) per_second=(\d+)`).FindStringSubmatch(a.logs()); m != nil {
		t.Logf("drained %s events in %s: %s events/s", m[1], m[2], m[3])
	}

	// Every machine's heartbeats, in order, none missing (a repeat after
	// a reconnect is allowed); its last state as Slipway has it.
	heard := map[string][]int{}  // MAC → the details of its heartbeats heard upstream
	sites := map[string]string{} // MAC → the site its topic named
	done := func() bool {
		for i := range machines {
			if h := heard[bridgeMAC(i)]; len(h) == 0 || h[len(h)-1] != rounds-1 {
				return false
			}
		}
		for i := range secondMachines {
			if h := heard[secondMAC(i)]; len(h) == 0 || h[len(h)-1] != secondRounds-1 {
				return false
			}
		}
		return true
	}
	watcher.until(t, 60*time.Second, func(topic, payload string) bool {
		if strings.Contains(topic, "/NICO/v1/") {
			if err := nicoschema.Validate([]byte(payload)); err != nil {
				t.Fatalf("%s carries a payload NICo's schema refuses: %s\n%v", topic, payload, err)
			}
		}
		var m struct{ MAC, Detail string }
		if strings.HasSuffix(topic, "/onboarding") && json.Unmarshal([]byte(payload), &m) == nil {
			if n, err := strconv.Atoi(m.Detail); err == nil {
				heard[m.MAC] = append(heard[m.MAC], n)
				sites[m.MAC] = strings.Split(topic, "/")[1]
			}
		}
		return done()
	})
	checkHeardInOrder(t, heard, machines, rounds, bridgeMAC)
	checkHeardInOrder(t, heard, secondMachines, secondRounds, secondMAC)
	for i := range secondMachines {
		if sites[secondMAC(i)] != "e2e-2" || sites[bridgeMAC(i)] != "e2e" {
			t.Fatalf("machines heard under the wrong site: %s under %q, %s under %q", secondMAC(i), sites[secondMAC(i)], bridgeMAC(i), sites[bridgeMAC(i)])
		}
	}
}

// checkHeardInOrder checks that each machine's heartbeats 0 to rounds-1
// were heard in order (a repeat after a reconnect allowed, a gap never).
func checkHeardInOrder(t *testing.T, heard map[string][]int, machines, rounds int, mac func(int) string) {
	t.Helper()
	for i := range machines {
		next := 0
		for _, n := range heard[mac(i)] {
			switch {
			case n == next:
				next++
			case n > next:
				t.Fatalf("%s: heartbeat %d heard before %d: %v", mac(i), n, next, heard[mac(i)])
			}
		}
		if next != rounds {
			t.Fatalf("%s: %d of %d heartbeats heard upstream: %v", mac(i), next, rounds, heard[mac(i)])
		}
	}
}

func bridgeMAC(i int) string { return fmt.Sprintf("02:b1:00:00:%02x:%02x", i>>8, i&0xff) }
func secondMAC(i int) string { return fmt.Sprintf("02:b2:00:00:%02x:%02x", i>>8, i&0xff) }

// startBridged runs slipway serve on loopback with a bridge to upstream
// under site, and waits until the bridge is connected.
func startBridged(t *testing.T, site, upstream string) *appliance {
	t.Helper()
	a := serveBridged(t, site, upstream)
	waitBridge(t, a, "connected", func(b bridgeStatus) bool { return b.Connected })
	return a
}

// serveBridged runs slipway serve on loopback, machines made by their
// heartbeats, with a bridge to upstream under site, until it is ready.
func serveBridged(t *testing.T, site, upstream string) *appliance {
	t.Helper()
	tcp := testkit.FreePorts(t, "tcp", 2)
	a := startServe(t, testbed.Host{}, fmt.Sprintf(`
lan: {interface: lo, address: 127.0.0.1/8}
data_dir: DATA_DIR
http: {port: %d, max_connections_per_address: 4096}
https: {port: 0}
tftp: {root: TFTP_ROOT, port: %d}
mqtt: {port: %d, websocket_port: 0}
dhcp: {mode: "off"}
netboot: {router_advertisements: false}
discovery: {doors: [dhcp, boot, heartbeat]}
usm: {port: 0}
bridge: {url: %q, site: %s}
users:
`+e2eUserYAML, tcp[0], testkit.FreePort(t, "udp"), tcp[1], upstream, site))
	a.url = fmt.Sprintf("http://127.0.0.1:%d", tcp[0])
	waitReady(t, a)
	return a
}

// postHeartbeats has machines post heartbeats numbered from to to (in
// their detail), each machine in order, all machines at once.
func postHeartbeats(t *testing.T, a *appliance, machines, from, to int, mac func(int) string) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range machines {
		wg.Go(func() {
			for n := from; n < to; n++ {
				if err := testbed.Heartbeat(context.Background(), a.url, mac(i), "disk", "running", strconv.Itoa(n)); err != nil {
					t.Errorf("machine %s, heartbeat %d: %v", mac(i), n, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// bridgeStatus is the bridge's part of /readyz.
type bridgeStatus struct {
	Connected bool
	Backlog   int64
	Sent      int64
	LastError string `json:"last_error"`
	CatchUp   *struct {
		Events    int     `json:"events"`
		Seconds   float64 `json:"seconds"`
		PerSecond float64 `json:"per_second"`
	} `json:"last_catch_up"`
}

// waitBridge polls /readyz (with curl, from the appliance's host) until
// the bridge's status satisfies ok.
func waitBridge(t *testing.T, a *appliance, what string, ok func(bridgeStatus) bool) bridgeStatus {
	t.Helper()
	var last bridgeStatus
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		out, err := a.host.Run(context.Background(), "curl", "-sS", "--max-time", "5", a.url+"/readyz")
		if err == nil {
			var body struct{ Bridge bridgeStatus }
			if last = body.Bridge; json.Unmarshal([]byte(out), &body) == nil {
				if last = body.Bridge; ok(last) {
					return last
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: the bridge says %+v", what, last)
	return last
}
