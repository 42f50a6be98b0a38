package wiring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/broker"
	"github.com/slipway/slipway/broker/nicoschema"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

func testConfig(t *testing.T, dataDir string, machines ...config.Machine) *config.Config {
	t.Helper()
	return testConfigWith(t, dataDir, DemoInventory{Machines: machines})
}

func testPorts(t *testing.T) DemoPorts {
	tcp, udp := testkit.FreePorts(t, "tcp", 5), testkit.FreePorts(t, "udp", 2)
	return DemoPorts{HTTP: tcp[0], MQTT: tcp[1], WebSocket: tcp[2], USM: tcp[3], HTTPS: tcp[4], TFTP: udp[0], DHCP: udp[1]}
}

// The API user every test config has unless it names its own.
const (
	testUser     = "tester"
	testPassword = "tester-password"
)

func testConfigWith(t *testing.T, dataDir string, inv DemoInventory) *config.Config {
	t.Helper()
	if len(inv.Users) == 0 {
		h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		inv.Users = []config.User{{Name: testUser, Role: "admin", PasswordHash: string(h)}}
	}
	cfg, err := DemoConfig(dataDir, testPorts(t), inv, "console=ttyS0")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// loginToken logs the test user in and returns its session token.
func loginToken(t *testing.T, httpURL string) string {
	t.Helper()
	code, body := testkit.Request(t, http.MethodPost, httpURL+"/api/v1/login", "", "", `{"username":"`+testUser+`","password":"`+testPassword+`"}`)
	var login struct{ Token string }
	if err := json.Unmarshal([]byte(body), &login); code != 200 || err != nil || login.Token == "" {
		t.Fatalf("login: %d %s", code, body)
	}
	return login.Token
}

// runUntilReady starts the appliance and returns its URLs and a stop
// function that returns Run's result.
func runUntilReady(t *testing.T, cfg *config.Config) (URLs, func() error) {
	t.Helper()
	_, urls, stop := startAppliance(t, cfg)
	return urls, stop
}

// startAppliance is runUntilReady that returns the appliance as well.
func startAppliance(t *testing.T, cfg *config.Config) (*Appliance, URLs, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan URLs, 1)
	done := make(chan error, 1)
	a := New(cfg, Options{Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), OnReady: func(u URLs) { ready <- u }})
	go func() { done <- a.Run(ctx) }()
	select {
	case u := <-ready:
		return a, u, func() error { cancel(); return <-done }
	case err := <-done:
		cancel()
		t.Fatalf("Run ended before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready after 10s")
	}
	return nil, URLs{}, nil
}

// apiGet fetches url as user (HTTP basic authentication).
func apiGet(t *testing.T, url, user, password string) (int, string) {
	t.Helper()
	return testkit.Request(t, http.MethodGet, url, user, password, "")
}

func TestRunServesAndStopsCleanly(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), config.Machine{ID: "m1", MACs: []string{"52:54:00:00:00:01"}})
	urls, stop := runUntilReady(t, cfg)
	for path, want := range map[string]string{"/readyz": `"ready"`, "/metrics": "slipway_ready 1", "/api/v1/machines/m1": `"state":"created"`} {
		code, body := apiGet(t, urls.HTTP+path, testUser, testPassword)
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d %s", path, code, body)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
}

func TestInventorySyncKeepsStateAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	m := config.Machine{ID: "m1", MACs: []string{"52:54:00:00:00:01"}, Hostname: "old"}
	_, stop := runUntilReady(t, testConfig(t, dir, m))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Move the machine on, as the lifecycle will, then restart with a new hostname.
	db, err := store.Open(context.Background(), dir+"/slipway.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(context.Background(), func(tx *store.Tx) error {
		_, err := tx.Transition(store.Transition{MachineID: "m1", From: "created", To: "ready", StateJSON: `{"state":"ready"}`, Cause: "test"}, domain.InitialState)
		return err
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	m.Hostname = "new"
	_, stop = runUntilReady(t, testConfig(t, dir, m))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(context.Background(), dir+"/slipway.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Machine(context.Background(), "m1")
	if err != nil || got.Hostname != "new" || got.State != "ready" {
		t.Fatalf("after restart: %+v, %v", got, err)
	}
}

func TestTakenPortFailsStartWithTheField(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := testConfig(t, t.TempDir())
	cfg.HTTP.Port = taken.Addr().(*net.TCPAddr).Port
	err = New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Run(context.Background())
	want := fmt.Sprintf("http.port: cannot listen on 127.0.0.1:%d", cfg.HTTP.Port)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("want %q..., got %v", want, err)
	}
}

func TestCheckLAN(t *testing.T) {
	lo := loopbackInterface()
	tests := []struct {
		name, iface, cidr, field string
	}{
		{"address on interface", lo, "127.0.0.1/8", ""},
		{"address elsewhere", lo, "192.0.2.1/24", "lan.address"},
		{"no such interface", "nosuch0", "127.0.0.1/8", "lan.interface"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.Config{LAN: config.LAN{Interface: tt.iface, Address: tt.cidr}}
			_ = cfg.Validate()
			err := checkLAN(tt.iface, cfg.LANPrefix())
			var le LANError
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.As(err, &le) || le.Field != tt.field {
				t.Fatalf("want a LANError on %s, got %v", tt.field, err)
			}
		})
	}
}

// The demo's simulated fleet boots through the real doors over loopback
// (DHCP unicast, TFTP, the iPXE script and the assets over HTTP), runs its
// installer (cloud-init, heartbeats through every stage), and a subscriber
// on the bus sees each machine's whole story, every payload valid against
// NICo's schema, ending in ready.
func TestSimulatedFleetNetbootsAndOnboards(t *testing.T) {
	dir := t.TempDir()
	const n = 3
	cfg := testConfig(t, dir, testbed.Fleet(n)...)
	if err := testbed.SeedDemoFiles(cfg.TFTPRoot(), cfg.AssetsDir(), cfg.TemplatesDir()); err != nil {
		t.Fatal(err)
	}
	urls, stop := runUntilReady(t, cfg)
	defer stop()
	states := subscribe(t, "tcp://"+strings.TrimPrefix(urls.MQTT, "mqtt://"), "NICO/#")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := map[string]bool{}
	testbed.BootFleet(ctx, net.IPv4(127, 0, 0, 1), cfg.DHCP.Port, cfg.TFTP.Port, n, 0, testbed.Node{Onboard: true}, func(i int, r testbed.BootReport, err error) {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
			return
		}
		if r.LoaderBytes != 1<<20 || r.KernelBytes != 8<<20 || r.InitrdBytes != 4<<20 || !r.Onboarded || seen[r.IP.String()] {
			t.Errorf("node %d: %+v", i, r)
		}
		seen[r.IP.String()] = true
	})
	if len(seen) != n {
		t.Fatalf("%d nodes booted, want %d", len(seen), n)
	}
	stories := map[string][]string{}
	for len(stories) < n || !allReady(stories) {
		select {
		case m := <-states:
			if err := nicoschema.Validate(m.Payload()); err != nil {
				t.Fatalf("%s %s: %v", m.Topic(), m.Payload(), err)
			}
			var msg broker.StateChangeMessage
			if err := json.Unmarshal(m.Payload(), &msg); err != nil {
				t.Fatal(err)
			}
			stories[msg.MachineID] = append(stories[msg.MachineID], msg.ManagedHostState.Label())
		case <-time.After(10 * time.Second):
			t.Fatalf("the bus did not tell every machine's story to ready: %v", stories)
		}
	}
	want := "created hostinit/init hostinit/waitingfordiscovery hostinit/discovered validation/disk validation/disk validation/install validation/install validation/configure validation/configure validation/validate validation/validate validation/complete ready"
	for id, story := range stories {
		if got := strings.Join(story, " "); got != want {
			t.Errorf("%s:\n got %s\nwant %s", id, got, want)
		}
	}
}

func allReady(stories map[string][]string) bool {
	for _, s := range stories {
		if s[len(s)-1] != "ready" {
			return false
		}
	}
	return true
}

// subscribe connects an MQTT client and returns what arrives on filter.
func subscribe(t testing.TB, url, filter string) <-chan paho.Message {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("test-%d", time.Now().UnixNano())))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(10) })
	got := make(chan paho.Message, 1024)
	if tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return got
}

// However many serve loops fail at once, the first is reported and the
// stop that follows waits for none of the others' reports.
func TestManyFailingPartsDoNotHangTheStop(t *testing.T) {
	p := &parts{errs: make(chan error, 1), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	p.serveCtx, p.stopAll = context.WithCancel(context.Background())
	for i := range 20 {
		p.serve(fmt.Sprintf("part-%d", i), func() error { return errors.New("broken") })
	}
	if err := <-p.errs; !strings.Contains(err.Error(), "broken") {
		t.Fatalf("first failure: %v", err)
	}
	p.stopAll()
	stopped := make(chan struct{})
	go func() { p.loops.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the serve loops never ended: a failure report blocked")
	}
}
