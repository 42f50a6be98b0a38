//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/broker/nicoschema"
	"github.com/slipway/slipway/testbed"
)

// busConfig's node host speaks for the racks' machines from an address of
// its own: the caller check is off (callers_test.go proves it).
const busConfig = lanBase + `
dhcp: {mode: "off"}
netboot: {caller_check: "off"}
mqtt:
  users:
    - name: ops
      password_hash: "HASH"
      acl:
        - {topic: "site/#", access: readwrite}
        - {topic: "NICO/#", access: read}
        - {topic: "$SYS/#", access: read}
profiles:
  debian: {kernel: debian/vmlinuz, cmdline: "console=ttyS0"}
  broken: {kernel: debian/vmlinuz, cmdline: "console=ttyS0", cloud_init: broken.yaml}
default_profile: debian
machines:
  - {id: r1-t1, macs: ["02:00:00:00:01:01"]}
  - {id: r1-t2, macs: ["02:00:00:00:01:02"]}
  - {id: r1-t3, macs: ["02:00:00:00:01:03"], profile: broken}
`

const debianTemplate = `#cloud-config
hostname: {{.Hostname}}
fqdn: {{.Hostname}}.lab.example
ssh_pwauth: false
packages: [openssh-server, curl]
write_files:
  - path: /etc/slipway-machine
    content: "{{.MachineID}} {{.MAC}} rack={{.RackID}}"
runcmd:
  - [sh, -c, "echo onboarded from {{.ServerURL}}"]
`

// bus is a mosquitto_sub watching a broker from a host, line by line
// ("topic payload").
type bus struct {
	lines chan string
	stop  context.CancelFunc
}

// lanBroker is where the appliance's MQTT listens in the namespace LAN tests.
const lanBroker = "10.88.0.1:1883"

func watchBus(t *testing.T, host testbed.Host, broker string, args ...string) *bus {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr, port, _ := strings.Cut(broker, ":")
	// With -d it says when the broker acknowledged the subscription:
	// waiting for that replaces guessing with a sleep. (Anonymous clients
	// may not read $SYS/, whose retained version used to be the sign.)
	// stdbuf: into a pipe its debug lines would wait in stdio's buffer.
	cmd := host.Command(ctx, "stdbuf", append([]string{"-oL", "mosquitto_sub", "-h", addr, "-p", port, "-v", "-q", "1", "-d"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Room for every message of a test that reads only at the end.
	b := &bus{lines: make(chan string, 1<<16), stop: cancel}
	subscribed := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if debugLine(line) {
				if strings.HasSuffix(line, "received SUBACK") {
					select {
					case <-subscribed:
					default:
						close(subscribed)
					}
				}
				continue
			}
			b.lines <- line
		}
		close(b.lines)
	}()
	t.Cleanup(func() { cancel(); cmd.Wait() })
	select {
	case <-subscribed:
	case <-time.After(10 * time.Second):
		t.Fatalf("mosquitto_sub on %s: not subscribed after 10s", broker)
	}
	return b
}

// debugLine is a line of mosquitto_sub -d's own ("Client … received
// PUBLISH …", "Subscribed (mid: 1): 1"), not a message.
func debugLine(line string) bool {
	return strings.HasPrefix(line, "Client ") || strings.HasPrefix(line, "Subscribed (mid")
}

// drain stops the subscriber and returns every line it had not handed out.
func (b *bus) drain() []string {
	b.stop()
	var rest []string
	for line := range b.lines {
		rest = append(rest, line)
	}
	return rest
}

// until reads lines until done says so, failing after timeout.
func (b *bus) until(t *testing.T, timeout time.Duration, done func(topic, payload string) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-b.lines:
			if !ok {
				t.Fatal("mosquitto_sub ended")
			}
			topic, payload, _ := strings.Cut(line, " ")
			if strings.HasPrefix(topic, "NICO/") {
				if err := nicoschema.Validate([]byte(payload)); err != nil {
					t.Fatalf("%s carries a payload NICo's schema refuses: %s\n%v", topic, payload, err)
				}
			}
			if done(topic, payload) {
				return
			}
		case <-deadline:
			t.Fatalf("mosquitto_sub: not done after %s", timeout)
		}
	}
}

func stateOf(payload string) string {
	var msg struct {
		State struct {
			State string `json:"state"`
		} `json:"managed_host_state"`
	}
	json.Unmarshal([]byte(payload), &msg)
	return msg.State.State
}

func TestBusWithMosquittoClients(t *testing.T) {
	requireCommands(t, map[string]string{"mosquitto_sub": "mosquitto-clients", "mosquitto_pub": "mosquitto-clients", "curl": "curl"})
	lan := newLAN(t, "10.88.0.1/24")
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	a := prepareServe(t, lan.Server, strings.Replace(busConfig, "HASH", string(hash), 1), writeTemplates)
	waitReady(t, a)
	watcher, err := lan.AddHost(context.Background(), "watch", "10.88.0.60/24")
	if err != nil {
		t.Fatal(err)
	}
	node, err := lan.AddHost(context.Background(), "node", "10.88.0.61/24")
	if err != nil {
		t.Fatal(err)
	}

	// A new subscriber sees every machine's current state, retained.
	nico := watchBus(t, watcher, lanBroker, "-t", "NICO/#", "-t", "slipway/#")
	retained := map[string]bool{}
	nico.until(t, 10*time.Second, func(topic, payload string) bool {
		retained[topic] = stateOf(payload) == "created"
		return len(retained) == 3
	})

	// A node onboards by heartbeat; the bus tells its story live, to ready.
	for _, stage := range domain.Stages {
		for _, phase := range []string{"started", "done"} {
			body := fmt.Sprintf(`{"mac":"02-00-00-00-01-01","stage":%q,"phase":%q}`, stage, phase)
			if out, err := node.Run(context.Background(), "curl", "-fsS", "-H", "Content-Type: application/json", "-d", body, lanURL+"/heartbeat"); err != nil {
				t.Fatalf("heartbeat: %v\n%s", err, out)
			}
		}
	}
	var story []string
	var onboarding int
	nico.until(t, 10*time.Second, func(topic, payload string) bool {
		switch topic {
		case "NICO/v1/machine/r1-t1/state":
			story = append(story, stateOf(payload))
		case "slipway/v1/machine/r1-t1/onboarding":
			onboarding++
		}
		return len(story) > 0 && story[len(story)-1] == "ready"
	})
	if story[0] != "hostinit" || !strings.Contains(strings.Join(story, " "), "validation") || onboarding < 13 {
		t.Fatalf("r1-t1's story on the bus: %v, %d onboarding events", story, onboarding)
	}

	// Nobody on the network publishes under NICO/: not anonymous clients,
	// not named users whatever their rules.
	for _, who := range [][]string{nil, {"-u", "ops", "-P", "s3cret"}} {
		args := append([]string{"-h", "10.88.0.1", "-t", "NICO/v1/machine/r1-t2/state", "-m", `{"forged":true}`, "-q", "1", "-r"}, who...)
		node.Run(context.Background(), "mosquitto_pub", args...) // refused: the broker drops the client
	}
	if out, err := node.Run(context.Background(), "curl", "-fsS", "-H", "Content-Type: application/json",
		"-d", `{"mac":"02:00:00:00:01:02","stage":"boot","phase":"started"}`, lanURL+"/heartbeat"); err != nil {
		t.Fatalf("heartbeat: %v\n%s", err, out)
	}
	nico.until(t, 10*time.Second, func(topic, payload string) bool {
		if strings.Contains(payload, "forged") {
			t.Fatalf("a forged message reached subscribers on %s", topic)
		}
		return topic == "NICO/v1/machine/r1-t2/state"
	})
	out, err := watcher.Run(context.Background(), "mosquitto_sub", "-h", "10.88.0.1", "-t", "NICO/v1/machine/r1-t2/state", "-C", "1", "-W", "5")
	if err != nil || strings.Contains(out, "forged") || stateOf(out) != "hostinit" {
		t.Fatalf("retained state of r1-t2: %q, %v", out, err)
	}

	// A named user reads and writes what its rules say; a wrong password is refused.
	site := watchBus(t, watcher, lanBroker, "-u", "ops", "-P", "s3cret", "-t", "site/#")
	if out, err := node.Run(context.Background(), "mosquitto_pub", "-h", "10.88.0.1", "-u", "ops", "-P", "s3cret", "-t", "site/rack1", "-m", "hello", "-q", "1"); err != nil {
		t.Fatalf("ops publishing on site/: %v\n%s", err, out)
	}
	site.until(t, 10*time.Second, func(topic, payload string) bool { return topic == "site/rack1" && payload == "hello" })
	if out, err := watcher.Run(context.Background(), "mosquitto_sub", "-h", "10.88.0.1", "-u", "ops", "-P", "wrong", "-t", "site/#", "-C", "1", "-W", "3"); err == nil {
		t.Fatalf("a wrong password subscribed: %s", out)
	} else if !strings.Contains(strings.ToLower(out), "not authori") {
		t.Errorf("a wrong password should be refused as not authorised: %s", out)
	}

	t.Run("websocket", func(t *testing.T) { webSocketSubscriber(t, watcher) })
}

// writeTemplates puts the profiles' cloud-init templates in the data
// directory: a good one, and one that does not parse.
func writeTemplates(dataDir string) {
	dir := filepath.Join(dataDir, "templates")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "debian.yaml"), []byte(debianTemplate), 0o644)
	os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("#cloud-config\nhostname: {{.Hostname\n"), 0o644)
}

// webSocketSubscriber checks MQTT over WebSocket with Debian's Python paho
// client: it subscribes through ws://10.88.0.1:8083/mqtt and must see every
// machine's retained state.
func webSocketSubscriber(t *testing.T, host testbed.Host) {
	t.Helper()
	if _, err := host.Run(context.Background(), debianPython, "-c", "import paho.mqtt.client"); err != nil {
		missingPeer(t, "python3-paho-mqtt is missing: install Debian's python3-paho-mqtt (make e2e-deps does)")
	}
	const script = `
import json, sys, time
import paho.mqtt.client as mqtt
seen = {}
c = mqtt.Client(transport="websockets")
c.ws_set_options(path="/mqtt")
c.on_connect = lambda c, u, f, rc: c.subscribe("NICO/#", qos=1)
c.on_message = lambda c, u, m: seen.__setitem__(m.topic, json.loads(m.payload)["managed_host_state"]["state"])
c.connect("10.88.0.1", 8083)
c.loop_start()
deadline = time.time() + 10
while len(seen) < 3 and time.time() < deadline:
    time.sleep(0.1)
c.loop_stop()
print(json.dumps(seen, sort_keys=True))
`
	out, err := host.Run(context.Background(), debianPython, "-c", script)
	if err != nil {
		t.Fatalf("python paho over WebSocket: %v\n%s", err, out)
	}
	var seen map[string]string
	if err := json.Unmarshal([]byte(out), &seen); err != nil || seen["NICO/v1/machine/r1-t1/state"] != "ready" || len(seen) != 3 {
		t.Fatalf("over WebSocket a subscriber saw %s (%v); want 3 machines, r1-t1 ready", out, err)
	}
}

// Cloud-init as an installer fetches it: the template rendered, a broken
// template replaced by the fallback, both valid to Debian's cloud-init; a
// fetch without ?mac= placed by the kernel's neighbor table.
func TestCloudInitForRealInstallers(t *testing.T) {
	requireCommands(t, map[string]string{"cloud-init": "cloud-init", "curl": "curl"})
	lan := newLAN(t, "10.88.0.1/24")
	a := prepareServe(t, lan.Server, strings.Replace(busConfig, "HASH", "$2a$10$"+strings.Repeat("a", 53), 1), writeTemplates)
	waitReady(t, a)
	node, err := lan.AddHost(context.Background(), "node", "10.88.0.61/24")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tt := range []struct{ mac, want string }{
		{"02:00:00:00:01:01", "fqdn: node-020000000101.lab.example"},
		{"02:00:00:00:01:03", "Slipway fallback user-data"},
	} {
		out, err := node.Run(context.Background(), "curl", "-fsS", lanURL+"/cloud-init/user-data?mac="+tt.mac)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, strings.ReplaceAll(tt.mac, ":", "")+".yaml")
		os.WriteFile(file, []byte(out), 0o644)
		if check, err := exec.Command("cloud-init", "schema", "-c", file).CombinedOutput(); err != nil {
			t.Errorf("cloud-init schema refuses the user-data for %s: %v\n%s\n%s", tt.mac, err, check, out)
		}
		if !strings.Contains(out, tt.want) {
			t.Errorf("user-data for %s lacks %q:\n%s", tt.mac, tt.want, out)
		}
	}
	if !strings.Contains(a.logs(), "broken.yaml") {
		t.Errorf("the fallback was served without a warning naming the template:\n%s", a.logs())
	}
	// The schema check itself can fail: a cloud-config with a wrong type is refused.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("#cloud-config\nssh_pwauth: [yes, please]\n"), 0o644)
	if out, err := exec.Command("cloud-init", "schema", "-c", bad).CombinedOutput(); err == nil {
		t.Fatalf("cloud-init schema accepted a bad config: %s", out)
	}

	// Without ?mac=, the appliance finds the node's MAC in its neighbor table.
	mac, err := node.Run(context.Background(), "cat", "/sys/class/net/eth0/address")
	if err != nil {
		t.Fatal(err)
	}
	out, err := node.Run(context.Background(), "curl", "-fsS", lanURL+"/cloud-init/meta-data")
	want := "local-hostname: node-" + strings.ReplaceAll(strings.TrimSpace(mac), ":", "")
	if err != nil || !strings.Contains(out, want) {
		t.Fatalf("meta-data without ?mac=: %q, %v; want %s", out, err, want)
	}
}
