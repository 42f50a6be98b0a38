//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

// TestBenchBusAgainstMosquitto measures, in one run on loopback:
//   - heartbeats/s that Slipway acknowledges (each durable, each moving the
//     lifecycle and publishing) from 200 concurrent HTTP clients;
//   - MQTT fan-out: one publisher, 1,000 QoS 1 subscribers, the same
//     messages through Slipway's embedded broker and through mosquitto.
//
// SLIPWAY_BENCH=1 only (make bench-bus).
func TestBenchBusAgainstMosquitto(t *testing.T) {
	if os.Getenv("SLIPWAY_BENCH") == "" {
		t.Skip("a benchmark: run it with make bench-bus")
	}
	requireCommands(t, map[string]string{"mosquitto": "mosquitto"})
	seconds := envInt("SLIPWAY_BENCH_SECONDS", 10)
	hash, err := bcrypt.GenerateFromPassword([]byte("bench"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	httpPort, slipwayMQTT, mosquittoPort := testkit.FreePort(t, "tcp"), testkit.FreePort(t, "tcp"), testkit.FreePort(t, "tcp")
	a := startServe(t, testbed.Host{}, fmt.Sprintf(`
lan: {interface: lo, address: 127.0.0.1/8}
data_dir: DATA_DIR
log: {level: warn}
http: {port: %d}
https: {port: 0}
tftp: {root: TFTP_ROOT, port: %d}
# The bench's machines reach Slipway by heartbeats alone: they make them.
discovery: {doors: [dhcp, boot, heartbeat]}
mqtt:
  port: %d
  websocket_port: 0
  users:
    - {name: bench, password_hash: %q, acl: [{topic: "bench/#", access: readwrite}]}
dhcp: {mode: "off"}
netboot: {router_advertisements: false}
`, httpPort, testkit.FreePort(t, "udp"), slipwayMQTT, string(hash)))
	a.url = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitReady(t, a)
	stopMosquitto := startMosquitto(t, mosquittoPort)
	defer stopMosquitto()

	rate := heartbeatRate(t, a.url, 200, time.Duration(seconds)*time.Second)
	const subscribers, messages = 1000, 200
	fan := map[string]float64{}
	for _, b := range []struct {
		name       string
		port       int
		user, pass string
	}{{"slipway", slipwayMQTT, "bench", "bench"}, {"mosquitto", mosquittoPort, "", ""}} {
		fan[b.name] = fanOut(t, b.port, b.user, b.pass, subscribers, messages)
	}
	t.Logf("\n| measure | slipway | mosquitto | slipway/mosquitto |\n|---|---|---|---|\n"+
		"| heartbeats/s acknowledged, 200 clients, %ds | %.0f | – | – |\n"+
		"| MQTT QoS 1 deliveries/s, 1 publisher → %d subscribers × %d messages | %.0f | %.0f | %.2f |",
		seconds, rate, subscribers, messages, fan["slipway"], fan["mosquitto"], fan["slipway"]/fan["mosquitto"])
}

func startMosquitto(t *testing.T, port int) func() {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\nmax_inflight_messages 0\n", port)), 0o644)
	return startPeerProcess(t, exec.Command("mosquitto", "-c", conf))
}

// heartbeatRate posts heartbeats from clients goroutines for d and returns
// how many per second were acknowledged. Each client is one machine going
// round its stages, so the lifecycle moves and the bus carries every one.
func heartbeatRate(t *testing.T, server string, clients int, d time.Duration) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var acked atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mac := fmt.Sprintf("02:bb:00:00:%02x:%02x", i>>8, i&0xff)
			for n := 0; ctx.Err() == nil; n++ {
				stage := domain.Stages[n%len(domain.Stages)]
				if testbed.Heartbeat(ctx, server, mac, string(stage), string(domain.PhaseRunning), "") == nil {
					acked.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(acked.Load()) / time.Since(start).Seconds()
}

// fanOut connects subscribers QoS 1 clients to a broker on port, publishes
// messages QoS 1 from one more, and returns deliveries per second until the
// last subscriber has every message.
func fanOut(t *testing.T, port int, user, pass string, subscribers, messages int) float64 {
	t.Helper()
	url := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	var got atomic.Int64
	want := int64(subscribers * messages)
	done := make(chan struct{})
	var once sync.Once
	clients := make([]paho.Client, 0, subscribers+1)
	defer func() {
		for _, c := range clients {
			c.Disconnect(0)
		}
	}()
	connect := func(id string) paho.Client {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pass).
			SetMaxReconnectInterval(time.Second).SetOrderMatters(false))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s to %s: %v", id, url, tok.Error())
		}
		clients = append(clients, c)
		return c
	}
	for i := range subscribers {
		c := connect(fmt.Sprintf("sub-%d-%d", port, i))
		tok := c.Subscribe("bench/#", 1, func(paho.Client, paho.Message) {
			if got.Add(1) == want {
				once.Do(func() { close(done) })
			}
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
	}
	pub := connect(fmt.Sprintf("pub-%d", port))
	payload := []byte(`{"machine_id":"bench","timestamp":"2026-11-22T10:00:00Z","managed_host_state":{"state":"validation","validation_state":{"validation_type":"machinevalidation","machine_validation":{"machinevalidating":{"completed":2,"total":5,"context":"install","id":"00000000-0000-0000-0000-000000000000"}}}}}`)
	start := time.Now()
	for i := range messages {
		pub.Publish("bench/machine/"+strconv.Itoa(i%50)+"/state", 1, false, payload)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("port %d: %d of %d deliveries after 2 minutes", port, got.Load(), want)
	}
	elapsed := time.Since(start)
	t.Logf("port %d: %d deliveries in %s", port, want, elapsed.Round(time.Millisecond))
	return float64(want) / elapsed.Seconds()
}
