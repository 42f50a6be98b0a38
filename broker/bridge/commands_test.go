package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/slipway/slipway/appliance/auth"
	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/testbed/testkit"
)

// actions records what the commands asked for.
type actions struct {
	mu  sync.Mutex
	did []string
}

func (a *actions) record(s string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.did = append(a.did, s)
}

func (a *actions) Power(_ context.Context, bmcID string, act bmc.PowerAction) (string, error) {
	if bmcID == "gone" {
		return "", bmc.ErrUnknownBMC
	}
	a.record("power " + bmcID + " " + string(act))
	return "ForceOff", nil
}

func (a *actions) Provision(_ context.Context, machineID string, o bmc.ProvisionOptions) (bmc.Provisioned, error) {
	a.record("provision " + machineID + " " + o.Mode)
	return bmc.Provisioned{MachineID: machineID, Target: "Pxe", State: domain.HostInit(domain.HostInitWaitingForDiscovery)}, nil
}

func (a *actions) ResetOnboarding(_ context.Context, machineID string) (int64, error) {
	a.record("reset " + machineID)
	return 7, nil
}

func (a *actions) done() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.did...)
}

// Commands from upstream run as the API's would, within the role the
// bridge is given, and each is answered on its result topic.
func TestCommandsFromUpstream(t *testing.T) {
	up := startUpstream(t)
	results := subscribe(t, up.URL(), "sites/+/slipway/v1/commands/+/result", true)
	run := func(role string) (*actions, func(name, payload string) map[string]any) {
		did := &actions{}
		f := newFixture(t, up.URL(), func(c *Config) {
			c.ClientID, c.Prefix = "slipway-"+role, "sites/"+role+"/"
			c.Commands = Commands{Actions: did, Role: role}
		})
		testkit.WaitFor(t, "the bridge to connect", func() bool { return f.bridge.Status().Connected })
		sender := paho.NewClient(paho.NewClientOptions().AddBroker(up.URL()).SetClientID("sender-" + role))
		if tok := sender.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		t.Cleanup(func() { sender.Disconnect(10) })
		n := 0
		return did, func(name, payload string) map[string]any {
			t.Helper()
			n++
			id, fields := fmt.Sprintf("%s-%d", role, n), map[string]any{}
			if json.Unmarshal([]byte(payload), &fields) == nil {
				fields["id"] = id
				b, _ := json.Marshal(fields)
				payload = string(b)
			} else {
				id = "" // not JSON: answered without an id
			}
			sender.Publish("sites/"+role+"/slipway/v1/commands/"+name, 1, false, payload).Wait()
			var got map[string]any
			testkit.WaitFor(t, "the result of "+name, func() bool {
				for _, m := range results.messages() {
					var r map[string]any
					if json.Unmarshal(m.Payload(), &r) == nil && (r["id"] == id || id == "" && r["id"] == nil) && m.Topic() == "sites/"+role+"/slipway/v1/commands/"+name+"/result" {
						got = r
						return true
					}
				}
				return false
			})
			results.mu.Lock()
			results.got = nil
			results.mu.Unlock()
			return got
		}
	}

	did, send := run(auth.Operator)
	tests := []struct {
		name, command, payload string
		ok                     bool
		want                   string // in the result's error or result
	}{
		{"provision", "provision", `{"machine_id":"m1","boot_mode":"UEFI"}`, true, `hostinit/waitingfordiscovery`},
		{"power", "power", `{"bmc_id":"b1","action":"off"}`, true, `ForceOff`},
		{"reset heartbeats", "reset-heartbeats", `{"machine_id":"m1"}`, true, `"heartbeats_forgotten":7`},
		{"an unknown BMC", "power", `{"bmc_id":"gone","action":"on"}`, false, bmc.ErrUnknownBMC.Error()},
		{"a bad power action", "power", `{"bmc_id":"b1","action":"explode"}`, false, `is not a power action`},
		{"no machine", "provision", `{}`, false, "machine_id is missing"},
		{"a bad boot mode", "provision", `{"machine_id":"m1","boot_mode":"BIOS"}`, false, `BIOS`},
		{"an unknown command", "format-disks", `{"machine_id":"m1"}`, false, `is not a command: use power, provision or reset-heartbeats`},
		{"not JSON", "power", `not json`, false, "the command is not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(tt.command, tt.payload)
			text, _ := json.Marshal(r)
			if r["ok"] != tt.ok || !strings.Contains(string(text), tt.want) {
				t.Errorf("%s %s: %s; want ok %v and %s", tt.command, tt.payload, text, tt.ok, tt.want)
			}
		})
	}
	if got := strings.Join(did.done(), "; "); got != "provision m1 UEFI; power b1 off; reset m1" {
		t.Errorf("actions run: %s", got)
	}

	viewerDid, viewerSend := run(auth.Viewer)
	if r := viewerSend("power", `{"bmc_id":"b1","action":"off"}`); r["ok"] != false || !strings.Contains(r["error"].(string), "needs the operator role") {
		t.Errorf("a viewer's bridge powered off: %v", r)
	}
	if len(viewerDid.done()) != 0 {
		t.Errorf("a viewer's bridge ran %v", viewerDid.done())
	}
}
