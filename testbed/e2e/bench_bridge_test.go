//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

// TestBenchBridgeDrainAgainstMosquitto measures store-and-forward as an
// operator lives it: the upstream broker (mosquitto) is down while a
// backlog builds, then comes back, and the time from the first bridged
// message a subscriber there hears to the last of the backlog is taken.
// Slipway's bridge (events from heartbeats, waiting in its outbox on
// disk) and mosquitto's own bridge (a local mosquitto with a bridge
// connection to the same upstream, its queue in memory) carry the same
// number of messages, in rounds whose order alternates.
//
// SLIPWAY_BENCH=1 only (make bench-bridge); SLIPWAY_BENCH_BACKLOG events
// (default 100,000), SLIPWAY_BENCH_ROUNDS rounds (default 3).
func TestBenchBridgeDrainAgainstMosquitto(t *testing.T) {
	benchOnly(t, "bench-bridge")
	requireCommands(t, map[string]string{"mosquitto": "mosquitto"})
	backlog, rounds := envInt("SLIPWAY_BENCH_BACKLOG", 100_000), envInt("SLIPWAY_BENCH_ROUNDS", 3)
	// The upstream as installed, but holding everything for its one
	// subscriber: with its default queue (1,000) it drops for a subscriber
	// that a fast bridge outruns, and the count would measure that.
	up := testkit.StartMosquitto(t, "max_queued_messages 0")
	up.Stop()
	// mosquitto's bridge, with the one setting its documentation says a
	// bridge that must hold an outage's messages needs: no queue limit.
	peer := testkit.StartMosquitto(t, "max_queued_messages 0", "connection upstream",
		fmt.Sprintf("address 127.0.0.1:%d", up.Port), `topic # out 1 "" sites/peer/`, "cleansession false")
	a := serveBridged(t, "bench", up.URL())
	waitBridge(t, a, "the bridge to connect once", func(b bridgeStatus) bool { return b.Connected || b.LastError != "" })

	type result struct {
		n    int
		took time.Duration
		cpu  time.Duration
	}
	runs := map[string][]result{}
	for r := range rounds {
		order := []string{"slipway", "mosquitto"}
		if r%2 == 1 {
			order = []string{"mosquitto", "slipway"}
		}
		for _, who := range order {
			var n int
			var pid int
			prefix := "sites/bench/"
			if who == "slipway" {
				n, pid = fillSlipwayBacklog(t, a, backlog), a.cmd.Process.Pid
			} else {
				n, pid, prefix = fillMosquittoQueue(t, peer.Port, backlog), peer.Pid(), "sites/peer/"
			}
			cpu0, _ := testbed.CPUTime(pid)
			took := drainTime(t, up, prefix, n)
			cpu1, _ := testbed.CPUTime(pid)
			runs[who] = append(runs[who], result{n, took, cpu1 - cpu0})
			t.Logf("round %d, %s: %d messages drained in %s (%.0f/s), %s CPU", r+1, who, n, took.Round(time.Millisecond), float64(n)/took.Seconds(), (cpu1 - cpu0).Round(time.Millisecond))
			up.Stop()
		}
	}
	rate := func(who string) (float64, []string) {
		var rates []float64
		var shown []string
		for _, r := range runs[who] {
			rates = append(rates, float64(r.n)/r.took.Seconds())
			shown = append(shown, fmt.Sprintf("%.1fk", float64(r.n)/r.took.Seconds()/1000))
		}
		return middle(rates), shown
	}
	s, sr := rate("slipway")
	m, mr := rate("mosquitto")
	t.Logf("\n| backlog | slipway (events/s, rounds) | mosquitto bridge (rounds) | slipway/mosquitto |\n|---|---|---|---|\n| %d | %.0f (%s) | %.0f (%s) | %.2f |",
		backlog, s, strings.Join(sr, ", "), m, strings.Join(mr, ", "), s/m)
}

// fillSlipwayBacklog posts heartbeats, with the upstream down, until
// about n events wait for the bridge, and says how many wait.
func fillSlipwayBacklog(t *testing.T, a *appliance, n int) int {
	t.Helper()
	waitBridge(t, a, "the bridge to see the upstream gone", func(b bridgeStatus) bool { return !b.Connected })
	start := waitBridge(t, a, "the backlog", func(bridgeStatus) bool { return true }).Backlog
	// A heartbeat is two events (its stage, its machine's state).
	beats := int64(n-int(start)) / 2
	var sent atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			for k := 0; sent.Add(1) <= beats; k++ {
				stage := []string{"disk", "install", "configure", "validate"}[k%4]
				if err := testbed.Heartbeat(context.Background(), a.url, fmt.Sprintf("02:bb:00:00:%02x:%02x", i>>8, i&0xff), stage, "running", strconv.Itoa(k)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// The bridge measures its backlog every two seconds: wait for it to settle.
	var last int64 = -1
	b := waitBridge(t, a, "the backlog to settle", func(b bridgeStatus) bool {
		settled := b.Backlog == last
		last = b.Backlog
		if !settled {
			time.Sleep(2 * time.Second)
		}
		return settled
	})
	return int(b.Backlog)
}

// fillMosquittoQueue publishes n messages of a machine's state's size to
// the peer mosquitto, whose bridge holds them while the upstream is down.
func fillMosquittoQueue(t *testing.T, port, n int) int {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", port)).SetClientID("bench-publisher"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to the peer: %v", tok.Error())
	}
	defer c.Disconnect(10)
	payload := `{"machine_id":"m","timestamp":"2026-12-05T04:00:00Z","managed_host_state":{"state":"validation","validation_state":{"state":"install"}},"pad":"` + strings.Repeat("x", 120) + `"}`
	tokens := make([]paho.Token, 0, 1024)
	for i := range n {
		tokens = append(tokens, c.Publish(fmt.Sprintf("NICO/v1/machine/m%d/state", i%200), 1, true, payload))
		if len(tokens) == cap(tokens) || i == n-1 {
			for _, tok := range tokens {
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					t.Fatalf("publish to the peer: %v", tok.Error())
				}
			}
			tokens = tokens[:0]
		}
	}
	return n
}

// drainTime starts the upstream with a subscriber on it and returns the
// time from the first message under prefix it hears to the n-th.
func drainTime(t *testing.T, up *testkit.Mosquitto, prefix string, n int) time.Duration {
	t.Helper()
	up.Restart()
	var count atomic.Int64
	var first, last atomic.Int64
	all := make(chan struct{})
	c := paho.NewClient(paho.NewClientOptions().AddBroker(up.URL()).SetClientID("bench-watcher"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to the upstream: %v", tok.Error())
	}
	defer c.Disconnect(10)
	handler := func(_ paho.Client, m paho.Message) {
		now := time.Now().UnixNano()
		first.CompareAndSwap(0, now)
		if count.Add(1) == int64(n) {
			last.Store(now)
			close(all)
		}
	}
	if tok := c.Subscribe(prefix+"#", 1, handler); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe upstream: %v", tok.Error())
	}
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		t.Fatalf("%s: %d of %d messages after 5 minutes", prefix, count.Load(), n)
	}
	return time.Duration(last.Load() - first.Load())
}
