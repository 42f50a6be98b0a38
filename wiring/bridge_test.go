package wiring

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/broker"
	"github.com/slipway/slipway/broker/nicoschema"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

// Two boxes, two sites, one upstream mosquitto: a subscriber there sees
// both sites' machines, schema-valid, each under its site; the boxes say
// so in /readyz, /metrics and the overview. A box whose bridge is turned
// off forgets the bridge's place in the outbox.
func TestTwoSitesFeedOneUpstreamBroker(t *testing.T) {
	up := testkit.StartMosquitto(t)
	states := subscribe(t, "tcp://127.0.0.1:"+fmt.Sprint(up.Port), "sites/+/NICO/v1/machine/+/state")
	type site struct {
		name, mac string
		cfg       *config.Config
		urls      URLs
		stop      func() error
	}
	sites := []*site{{name: "rack-a", mac: "52:54:00:0a:00:01"}, {name: "rack-b", mac: "52:54:00:0b:00:01"}}
	for _, s := range sites {
		s.cfg = testConfig(t, t.TempDir(), config.Machine{ID: s.name + "-m1", MACs: []string{s.mac}})
		s.cfg.Bridge.URL, s.cfg.Bridge.Site = up.URL(), s.name
		s.cfg.Bridge.Commands = config.BridgeCommands{Enabled: s.name == "rack-a", Role: "operator"}
		s.urls, s.stop = runUntilReady(t, s.cfg)
	}
	heard := map[string][]string{} // topic → states, in order
	want := map[string]string{}
	for _, s := range sites {
		want["sites/"+s.name+"/NICO/v1/machine/"+s.name+"-m1/state"] = "created"
	}
	waitFor := func(what string) {
		t.Helper()
		for {
			done := true
			for topic, state := range want {
				if h := heard[topic]; len(h) == 0 || h[len(h)-1] != state {
					done = false
				}
			}
			if done {
				return
			}
			select {
			case m := <-states:
				if err := nicoschema.Validate(m.Payload()); err != nil {
					t.Fatalf("%s %s: %v", m.Topic(), m.Payload(), err)
				}
				heard[m.Topic()] = append(heard[m.Topic()], stateLabel(t, m))
			case <-time.After(15 * time.Second):
				t.Fatalf("upstream did not hear %s: %v", what, heard)
			}
		}
	}
	waitFor("both sites' machines as created")

	a := sites[0]
	ctx := context.Background()
	if err := testbed.Heartbeat(ctx, a.urls.HTTP, a.mac, string(domain.StageDisk), string(domain.PhaseRunning), ""); err != nil {
		t.Fatal(err)
	}
	want["sites/rack-a/NICO/v1/machine/rack-a-m1/state"] = "validation/disk"
	waitFor("rack-a's machine move")

	// A command from upstream acts as the API would: rack-a takes them,
	// rack-b (commands off) does not listen.
	results := subscribe(t, "tcp://127.0.0.1:"+fmt.Sprint(up.Port), "sites/+/slipway/v1/commands/+/result")
	sender := paho.NewClient(paho.NewClientOptions().AddBroker(up.URL()).SetClientID("central"))
	if tok := sender.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sender.Disconnect(10)
	for _, s := range sites {
		sender.Publish("sites/"+s.name+"/slipway/v1/commands/reset-heartbeats", 1, false, `{"id":"r1","machine_id":"`+s.name+`-m1"}`).Wait()
	}
	select {
	case m := <-results:
		if m.Topic() != "sites/rack-a/slipway/v1/commands/reset-heartbeats/result" || !strings.Contains(string(m.Payload()), `"ok":true,"result":{"heartbeats_forgotten":1,"machine_id":"rack-a-m1"}`) {
			t.Errorf("result: %s %s", m.Topic(), m.Payload())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no result of the command")
	}
	if code, body := apiGet(t, a.urls.HTTP+"/clients/"+a.mac, "", ""); code != 404 {
		t.Errorf("the MAC's heartbeats after the command: %d %s", code, body)
	}
	select {
	case m := <-results:
		t.Errorf("rack-b, its commands off, answered: %s %s", m.Topic(), m.Payload())
	case <-time.After(300 * time.Millisecond):
	}

	for path, wantIn := range map[string]string{
		"/readyz":          `"bridge":{"url":"` + up.URL() + `","site":"rack-a","connected":true`,
		"/metrics":         "slipway_bridge_connected 1",
		"/api/v1/overview": `"bridge":{"url":"` + up.URL() + `"`,
	} {
		if code, body := apiGet(t, a.urls.HTTP+path, testUser, testPassword); code != 200 || !strings.Contains(body, wantIn) {
			t.Errorf("GET %s = %d, want %s in:\n%.600s", path, code, wantIn, body)
		}
	}

	// Off: the bridge's place is forgotten, nothing is held for it.
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	a.cfg.Bridge.URL = ""
	_, a.stop = runUntilReady(t, a.cfg)
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, a.cfg.DBPath(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if cursors, err := db.Cursors(ctx); err != nil || cursors["bridge"] != 0 {
		t.Errorf("cursors after the bridge was turned off: %v, %v", cursors, err)
	}
	if code, body := apiGet(t, sites[1].urls.HTTP+"/readyz", "", ""); code != 200 || !strings.Contains(body, `"connected":true`) {
		t.Errorf("rack-b: %d %s", code, body)
	}
}

func stateLabel(t *testing.T, m paho.Message) string {
	t.Helper()
	var msg broker.StateChangeMessage
	if err := json.Unmarshal(m.Payload(), &msg); err != nil {
		t.Fatal(err)
	}
	return msg.ManagedHostState.Label()
}
