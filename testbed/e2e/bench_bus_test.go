//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
	benchOnly(t, "bench-bus")
	requireCommands(t, map[string]string{"mosquitto": "mosquitto"})
	seconds := envInt("SLIPWAY_BENCH_SECONDS", 10)
	hash, err := bcrypt.GenerateFromPassword([]byte("bench"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tcp := testkit.FreePorts(t, "tcp", 3)
	httpPort, slipwayMQTT, mosquittoPort := tcp[0], tcp[1], tcp[2]
	a := startServe(t, testbed.Host{}, fmt.Sprintf(`
lan: {interface: lo, address: 127.0.0.1/8}
data_dir: DATA_DIR
log: {level: warn}
# 200 clients from one address: the per-address limit is for one machine.
http: {port: %d, max_connections_per_address: 4096}
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
	mosquittoPID, stopMosquitto := startMosquitto(t, mosquittoPort)
	defer stopMosquitto()

	rate := heartbeatRate(t, a.url, 200, time.Duration(seconds)*time.Second)
	brokers := []fanOutBroker{{"slipway", a.cmd.Process.Pid, slipwayMQTT, "bench", "bench"}, {"mosquitto", mosquittoPID, mosquittoPort, "", ""}}
	table := "\n| measure | slipway | mosquitto | slipway/mosquitto |\n|---|---|---|---|\n" +
		fmt.Sprintf("| heartbeats/s acknowledged, 200 clients, %ds | %.0f | – | – |\n", seconds, rate)
	for _, qos := range []byte{1, 0} {
		if !benchSelected("SLIPWAY_BENCH_QOS", strconv.Itoa(int(qos))) {
			continue
		}
		runs := fanOutRounds(t, brokers, qos, envInt("SLIPWAY_BENCH_ROUNDS", 3))
		s, m := middle(runs["slipway"].rates), middle(runs["mosquitto"].rates)
		table += fmt.Sprintf("| MQTT QoS %d deliveries/s, 1 publisher → %d subscribers × %d messages, median of %d (rounds: %s / %s) | %.0f | %.0f | %.2f |\n",
			qos, fanOutSubscribers, fanOutMessages, len(runs["slipway"].rates), roundList(runs["slipway"].rates), roundList(runs["mosquitto"].rates), s, m, s/m)
		s, m = middle(runs["slipway"].cpuPer100k), middle(runs["mosquitto"].cpuPer100k)
		table += fmt.Sprintf("| broker CPU-ms per 100,000 QoS %d deliveries, median | %.0f | %.0f | %.2f |\n", qos, s, m, s/m)
	}
	t.Log(table)
}

const fanOutSubscribers, fanOutMessages = 1000, 200

// fanOutBroker is a broker under test (its process, for its CPU time) and
// the user the bench connects as.
type fanOutBroker struct {
	name       string
	pid, port  int
	user, pass string
}

// fanOutRuns are one broker's rounds: deliveries/s, and the broker's CPU
// time per 100,000 deliveries in ms.
type fanOutRuns struct{ rates, cpuPer100k []float64 }

// fanOutRounds measures each broker's fan-out rounds times, the brokers'
// order alternating so that neither always runs on a warmer machine.
func fanOutRounds(t *testing.T, brokers []fanOutBroker, qos byte, rounds int) map[string]*fanOutRuns {
	t.Helper()
	runs := map[string]*fanOutRuns{}
	for _, b := range brokers {
		runs[b.name] = &fanOutRuns{}
	}
	for r := range rounds {
		for i := range brokers {
			b := brokers[(i+r)%len(brokers)]
			rate, cpuPer100k := fanOut(t, b, qos)
			runs[b.name].rates = append(runs[b.name].rates, rate)
			runs[b.name].cpuPer100k = append(runs[b.name].cpuPer100k, cpuPer100k)
		}
	}
	return runs
}

// roundList is rates as "a, b, c" in thousands.
func roundList(rates []float64) string {
	parts := make([]string, len(rates))
	for i, r := range rates {
		parts[i] = fmt.Sprintf("%.1fk", r/1000)
	}
	return strings.Join(parts, ", ")
}

func startMosquitto(t *testing.T, port int) (pid int, stop func()) {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\nmax_inflight_messages 0\n", port)), 0o644)
	cmd := exec.Command("mosquitto", "-c", conf)
	stop = startPeerProcess(t, cmd)
	return cmd.Process.Pid, stop
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

// fanOut connects fanOutSubscribers clients to b at qos, publishes
// fanOutMessages at qos from one more, and returns deliveries per second
// until the last subscriber has every message, and the broker's CPU time
// per 100,000 deliveries in ms over the same span. At QoS 0 a broker may drop
// messages: the run then ends once deliveries stop for 3 s, counts the
// rate up to the last one, and logs how many were lost.
func fanOut(t *testing.T, b fanOutBroker, qos byte) (rate, cpuPer100k float64) {
	t.Helper()
	url := fmt.Sprintf("tcp://127.0.0.1:%d", b.port)
	var got, last atomic.Int64
	want := int64(fanOutSubscribers * fanOutMessages)
	done := make(chan struct{})
	var once sync.Once
	clients := make([]paho.Client, 0, fanOutSubscribers+1)
	defer func() {
		for _, c := range clients {
			c.Disconnect(0)
		}
	}()
	connect := func(id string) paho.Client {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(b.user).SetPassword(b.pass).
			SetMaxReconnectInterval(time.Second).SetOrderMatters(false))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s to %s: %v", id, url, tok.Error())
		}
		clients = append(clients, c)
		return c
	}
	for i := range fanOutSubscribers {
		c := connect(fmt.Sprintf("sub-%d-%d", b.port, i))
		tok := c.Subscribe("bench/#", qos, func(paho.Client, paho.Message) {
			last.Store(time.Now().UnixNano())
			if got.Add(1) == want {
				once.Do(func() { close(done) })
			}
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
	}
	pub := connect(fmt.Sprintf("pub-%d", b.port))
	payload := []byte(`{"machine_id":"bench","timestamp":"2026-11-22T10:00:00Z","managed_host_state":{"state":"validation","validation_state":{"validation_type":"machinevalidation","machine_validation":{"machinevalidating":{"completed":2,"total":5,"context":"install","id":"00000000-0000-0000-0000-000000000000"}}}}}`)
	cpuBefore, err := testbed.CPUTime(b.pid)
	if err != nil {
		t.Fatal(err)
	}
	writesBefore, err := testbed.WriteCalls(b.pid)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range fanOutMessages {
		pub.Publish("bench/machine/"+strconv.Itoa(i%50)+"/state", qos, false, payload)
	}
	if !waitDeliveries(done, &got, qos) {
		t.Fatalf("%s: %d of %d QoS %d deliveries after 2 minutes", b.name, got.Load(), want, qos)
	}
	cpuAfter, err := testbed.CPUTime(b.pid)
	if err != nil {
		t.Fatal(err)
	}
	n := got.Load()
	elapsed := time.Unix(0, last.Load()).Sub(start)
	cpu := cpuAfter - cpuBefore
	rss, _ := testbed.ResidentKiB(b.pid)
	writes, _ := testbed.WriteCalls(b.pid)
	t.Logf("%s: QoS %d, %d of %d deliveries in %s, broker CPU %s, %d write calls, resident %d MiB", b.name, qos, n, want, elapsed.Round(time.Millisecond), cpu, writes-writesBefore, rss>>10)
	return float64(n) / elapsed.Seconds(), float64(cpu.Milliseconds()) * 100000 / float64(n)
}

// waitDeliveries waits for every delivery (done) or, at QoS 0, for
// deliveries to stop; false after 2 minutes.
func waitDeliveries(done <-chan struct{}, got *atomic.Int64, qos byte) bool {
	deadline := time.After(2 * time.Minute)
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	seen := int64(-1)
	for {
		select {
		case <-done:
			return true
		case <-deadline:
			return false
		case <-tick.C:
			n := got.Load()
			if qos == 0 && n == seen {
				return true
			}
			seen = n
		}
	}
}
