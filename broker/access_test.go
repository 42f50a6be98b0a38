package broker

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"
)

func TestCovers(t *testing.T) {
	tests := []struct {
		rule, filter string
		want         bool
	}{
		{"#", "NICO/v1/machine/m1/state", true},
		{"site/#", "site", true},
		{"site/#", "site/a/b", true},
		{"site/#", "sites/a", false},
		{"site/+", "site/a", true},
		{"site/+", "site/a/b", false},
		{"site/+", "site/+", true},
		{"site/+", "site/#", false},
		{"site/a", "site/+", false},
		{"NICO/v1/machine/+/state", "NICO/v1/machine/m1/state", true},
		{"NICO/v1/machine/+/state", "NICO/v1/machine/#", false},
		{"a/b", "a", false},
		{"a", "a/b", false},
		{"+", "a", true},
		{"+", "a/b", false},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a/b", false},
		{"a/#", "a/#", true},
		{"#", "#", true},
		{"+/+", "/", true},
		{"a/b", "a/b/", false},
	}
	for _, tt := range tests {
		if got := covers(tt.rule, tt.filter); got != tt.want {
			t.Errorf("covers(%q, %q) = %v, want %v", tt.rule, tt.filter, got, tt.want)
		}
	}
	// It runs for every delivery to every subscriber.
	if n := testing.AllocsPerRun(100, func() { covers("NICO/v1/machine/+/state", "NICO/v1/machine/m1/state") }); n != 0 {
		t.Errorf("covers allocates %v times a call", n)
	}
}

// A named user does what its rules say and nothing more; a wrong password
// is refused; with anonymous access off, so is a client with no name.
func TestNamedUsersAndAnonymousAccess(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, Access{Users: []User{{Name: "ops", PasswordHash: string(hash), Rules: []Rule{
		{Filter: "site/#", Read: true, Write: true}, {Filter: "NICO/v1/machine/+/state", Read: true}}}}})
	url := "tcp://" + b.Addrs()[0].String()

	if err := tryConnect(url, "", ""); err == nil {
		t.Error("an anonymous client connected with mqtt.anonymous off")
	}
	if err := tryConnect(url, "ops", "wrong"); err == nil {
		t.Error("a wrong password connected")
	}
	ops := connectAs(t, url, "ops", "s3cret")
	got := make(chan string, 8)
	for _, filter := range []string{"site/#", "NICO/v1/machine/+/state", "slipway/#"} {
		tok := ops.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { got <- m.Topic() })
		tok.WaitTimeout(5 * time.Second)
		st := tok.(*paho.SubscribeToken).Result()[filter]
		if wantOK := filter != "slipway/#"; (st < 0x80) != wantOK {
			t.Errorf("subscribe %s: return code %#x", filter, st)
		}
	}
	// QoS 0: an MQTT 3.1.1 client has no way to be told "no" for QoS 1, so
	// the broker disconnects it instead (TestNetworkClientsCannotPublish).
	ops.Publish("NICO/v1/machine/m1/state", 0, false, "forged").WaitTimeout(5 * time.Second)
	ops.Publish("site/rack1/note", 1, false, "hello").WaitTimeout(5 * time.Second)
	select {
	case topic := <-got:
		if topic != "site/rack1/note" {
			t.Fatalf("first message on %s: a forged NICO/ publish got through", topic)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the user's own publish on site/ never arrived")
	}
}

// dial connects a client as user (anonymous when empty).
func dial(url, user, pass string) (paho.Client, error) {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("t-%d", time.Now().UnixNano())).
		SetUsername(user).SetPassword(pass).SetConnectTimeout(5 * time.Second))
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, fmt.Errorf("connect %s: timed out", url)
	}
	return c, tok.Error()
}

func tryConnect(url, user, pass string) error {
	c, err := dial(url, user, pass)
	if err == nil {
		c.Disconnect(10)
	}
	return err
}

func connectAs(t *testing.T, url, user, pass string) paho.Client {
	t.Helper()
	c, err := dial(url, user, pass)
	if err != nil {
		t.Fatalf("connect %s as %q: %v", url, user, err)
	}
	t.Cleanup(func() { c.Disconnect(10) })
	return c
}

// With anonymous access on, a client that gives a name must still prove it.
func TestAWrongPasswordIsRefusedEvenWhenAnonymousMayConnect(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, Access{Anonymous: true, Users: []User{{Name: "ops", PasswordHash: string(hash)}}})
	url := "tcp://" + b.Addrs()[0].String()
	if err := tryConnect(url, "", ""); err != nil {
		t.Fatalf("anonymous: %v", err)
	}
	for _, who := range [][2]string{{"ops", "wrong"}, {"nobody", "s3cret"}} {
		if err := tryConnect(url, who[0], who[1]); err == nil {
			t.Errorf("%s with password %q connected", who[0], who[1])
		}
	}
}

// Anonymous clients read the events, not the broker's internals.
func TestAnonymousClientsCannotReadSYS(t *testing.T) {
	b := startBroker(t, Access{Anonymous: true})
	c := connect(t, "tcp://"+b.Addrs()[0].String())
	for filter, wantOK := range map[string]bool{"$SYS/#": false, "$SYS/broker/clients/connected": false, "NICO/#": true} {
		tok := c.Subscribe(filter, 0, func(paho.Client, paho.Message) {})
		tok.WaitTimeout(5 * time.Second)
		if st := tok.(*paho.SubscribeToken).Result()[filter]; (st < 0x80) != wantOK {
			t.Errorf("anonymous subscribe %s: return code %#x", filter, st)
		}
	}
}
