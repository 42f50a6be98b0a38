package wiring

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/broker"
	"github.com/slipway/slipway/broker/nicoschema"
	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/bmcemu"
	"github.com/slipway/slipway/testbed/testkit"
)

// A machine is provisioned through its BMC: the BMC sets a one-time PXE
// boot and power-cycles it, the simulated machine netboots through the
// real doors and onboards, and the bus tells its story to ready. The BMC's
// own status is on the bus; a viewer may not provision.
func TestProvisionThroughTheBMCNetbootsTheMachine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hash := func(pw string) string {
		h, _ := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		return string(h)
	}
	urls, machines, booted := startWithBMCFleet(t, ctx, config.User{Name: "otto", Role: "operator", PasswordHash: hash("otto-pw")},
		config.User{Name: "vic", Role: "viewer", PasswordHash: hash("vic-pw")})
	mqttURL := "tcp://" + strings.TrimPrefix(urls.MQTT, "mqtt://")
	bmcs := subscribe(t, mqttURL, "slipway/v1/bmc/#")
	id := machines[0].ID
	select {
	case m := <-bmcs:
		var s broker.BMCPayload
		if err := json.Unmarshal(m.Payload(), &s); err != nil || !s.Reachable || s.MachineID != id || s.Inventory.Serial != "SIM000000" ||
			strings.Contains(string(m.Payload()), testbed.DemoBMCPassword) || m.Topic() != broker.BMCTopic(s.ID) {
			t.Fatalf("BMC message on %s: %s (%v)", m.Topic(), m.Payload(), err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no BMC status on the bus")
	}

	provision := func(user, pw string) (int, string) {
		return testkit.Request(t, http.MethodPost, urls.HTTP+"/api/v1/machines/"+id+"/provision", user, pw, `{}`)
	}
	if code, body := provision("vic", "vic-pw"); code != http.StatusForbidden {
		t.Fatalf("viewer provisioned: %d %s", code, body)
	}
	states := subscribe(t, mqttURL, broker.StateTopic(id))
	if code, body := provision("otto", "otto-pw"); code != http.StatusAccepted || !strings.Contains(body, `"boot_target":"Pxe"`) {
		t.Fatalf("provision: %d %s", code, body)
	}
	select {
	case err := <-booted:
		if err != nil {
			t.Fatalf("the machine's network boot: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the BMC never netbooted the machine")
	}
	var story []string
	for len(story) == 0 || story[len(story)-1] != "ready" {
		select {
		case m := <-states:
			if err := nicoschema.Validate(m.Payload()); err != nil {
				t.Fatalf("%s: %v", m.Payload(), err)
			}
			var msg broker.StateChangeMessage
			_ = json.Unmarshal(m.Payload(), &msg)
			story = append(story, msg.ManagedHostState.Label())
		case <-time.After(10 * time.Second):
			t.Fatalf("no ready after provisioning: %v", story)
		}
	}
	// The retained "created" first, then the provisioning's own story.
	if got := strings.Join(story, " "); !strings.Contains(got, "hostinit/waitingfordiscovery hostinit/discovered validation/disk") {
		t.Errorf("story %s", got)
	}
}

// startWithBMCFleet runs the appliance on loopback with one simulated
// machine behind an emulated BMC, and users; booted hears each time the
// machine netbooted and onboarded (or why not). The appliance stops with
// the test.
func startWithBMCFleet(t *testing.T, ctx context.Context, users ...config.User) (URLs, []config.Machine, <-chan error) {
	t.Helper()
	urls, machines, booted, _ := startFleet(t, ctx, fleetOptions{n: 1}, users...)
	return urls, machines, booted
}

// fleetOptions shape startFleet's appliance: how many machines with
// emulated BMCs, an edit of the configuration, a tweak of each emulator.
type fleetOptions struct {
	n     int
	edit  func(*config.Config)
	tweak func(i int, c *bmcemu.Config)
	// booted hears every boot of every node.
	booted func(i int, r testbed.BootReport)
}

// startFleet is startWithBMCFleet with options; it also gives the fleet.
func startFleet(t *testing.T, ctx context.Context, o fleetOptions, users ...config.User) (URLs, []config.Machine, <-chan error, *testbed.BMCFleet) {
	t.Helper()
	dir, ports := t.TempDir(), testPorts(t)
	booted := make(chan error, 4*o.n)
	like := testbed.Node{Onboard: true, DHCP: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ports.DHCP}, TFTPPort: ports.TFTP}
	fleet, err := testbed.StartBMCFleetWith(ctx, o.n, like, func(i int, r testbed.BootReport, err error) {
		if o.booted != nil {
			o.booted(i, r)
		}
		if err == nil && !r.Onboarded {
			err = io.ErrUnexpectedEOF
		}
		booted <- err
	}, o.tweak)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fleet.Close)
	machines, creds, err := fleet.Inventory(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := DemoConfig(dir, ports, DemoInventory{Machines: machines, BMCCredentials: creds, Users: users}, "console=ttyS0")
	if err != nil {
		t.Fatal(err)
	}
	if err := testbed.SeedDemoFiles(cfg.TFTPRoot(), cfg.AssetsDir(), cfg.TemplatesDir()); err != nil {
		t.Fatal(err)
	}
	if o.edit != nil {
		o.edit(cfg)
	}
	urls, stop := runUntilReady(t, cfg)
	t.Cleanup(func() { stop() })
	return urls, machines, booted, fleet
}

// A BMC the config names is registered at start; moved to another
// endpoint, the old one is forgotten.
func TestConfigBMCsFollowTheConfig(t *testing.T) {
	farm, err := bmcemu.StartFarm(2, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	dir := t.TempDir()
	pw := filepath.Join(dir, "bmc.password")
	if err := os.WriteFile(pw, []byte("admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := map[string]config.BMCCredentials{"lab": {Username: "admin", PasswordFile: pw}}
	for _, b := range farm.BMCs {
		m := config.Machine{ID: "m1", MACs: []string{"52:54:00:00:10:01"}, BMC: &config.BMC{Endpoint: b.URL, Credentials: "lab"}}
		urls, stop := runUntilReady(t, testConfigWith(t, dir, DemoInventory{Machines: []config.Machine{m}, BMCCredentials: creds}))
		var list struct{ BMCs []broker.BMCPayload } // the API and the bus show a BMC alike
		_, body := apiGet(t, urls.HTTP+"/api/v1/bmcs", testUser, testPassword)
		_ = json.Unmarshal([]byte(body), &list)
		if len(list.BMCs) != 1 || list.BMCs[0].Endpoint != b.URL || list.BMCs[0].MachineID != "m1" {
			t.Errorf("BMCs with the config naming %s: %+v", b.URL, list.BMCs)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// bmc.ca_file: absent is the system's CAs; unreadable or without a
// certificate stops the start with the field named.
func TestBMCRootCAs(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if roots, err := bmcRootCAs(""); roots != nil || err != nil {
		t.Errorf("no file: %v %v", roots, err)
	}
	for file, want := range map[string]string{filepath.Join(dir, "missing.pem"): "no such file", junk: "holds no PEM certificate"} {
		if _, err := bmcRootCAs(file); err == nil || !strings.Contains(err.Error(), "bmc.ca_file") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", file, err)
		}
	}
	e, err := bmcemu.New(bmcemu.Config{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := bmcemu.Serve(e, "127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	good := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(good, r.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if roots, err := bmcRootCAs(good); err != nil || roots == nil {
		t.Errorf("a real certificate: %v", err)
	}
}
