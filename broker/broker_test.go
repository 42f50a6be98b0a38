package broker

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/testbed/testkit"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// startBroker serves a broker on loopback (TCP and WebSocket) with access;
// tune, if given, changes the rest of its configuration.
func startBroker(t testing.TB, access Access, tune ...func(*Config)) *Broker {
	t.Helper()
	var b *Broker
	var err error
	// A free port can be taken by another package's test between being
	// found and being bound: try again with others.
	for range 5 {
		ports := testkit.FreePorts(t, "tcp", 2)
		cfg := Config{Addr: loopback, Port: ports[0], WebSocketPort: ports[1], Access: access,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		for _, f := range tune {
			f(&cfg)
		}
		if b, err = New(cfg); !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func connect(t *testing.T, url string) paho.Client { return connectAs(t, url, "", "") }

func TestSubscribersOnTCPAndWebSocketGetRetainedEvents(t *testing.T) {
	b := startBroker(t, Access{Anonymous: true})
	if err := b.Publish("NICO/v1/machine/m1/state", []byte(`{"state":"ready"}`), true, 1); err != nil {
		t.Fatal(err)
	}
	urls := map[string]string{
		"tcp":       "tcp://" + b.Addrs()[0].String(),
		"websocket": "ws://" + b.Addrs()[1].String() + "/mqtt",
	}
	for name, url := range urls {
		t.Run(name, func(t *testing.T) {
			c := connect(t, url)
			got := make(chan string, 1)
			tok := c.Subscribe("NICO/v1/machine/+/state", 1, func(_ paho.Client, m paho.Message) {
				got <- fmt.Sprintf("%s %s retained=%v", m.Topic(), m.Payload(), m.Retained())
			})
			if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("subscribe: %v", tok.Error())
			}
			select {
			case msg := <-got:
				if want := `NICO/v1/machine/m1/state {"state":"ready"} retained=true`; msg != want {
					t.Fatalf("got %q, want %q", msg, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no retained message")
			}
		})
	}
}

// A QoS 1 subscriber that stops reading for a while (a busy consumer, a
// paused process) gets every message once it reads again, as long as no
// more than mqtt.max_queued_per_client wait for it: a message waiting for
// its acknowledgement is held as long as one waiting to be sent.
func TestSlowQoS1SubscriberLosesNothingWithinItsQueue(t *testing.T) {
	const messages = 12000 // past mochi's default of 8,192 in flight, within the 16,384 queued
	b := startBroker(t, Access{Anonymous: true})
	c := connect(t, "tcp://"+b.Addrs()[0].String())
	release := make(chan struct{})
	var got atomic.Int64
	tok := c.Subscribe("slipway/v1/#", 1, func(paho.Client, paho.Message) {
		<-release // the first message holds the client up until released
		got.Add(1)
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	for i := range messages {
		if err := b.Publish("slipway/v1/machine/m1/onboarding", []byte(strconv.Itoa(i)), false, 1); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	deadline := time.Now().Add(30 * time.Second)
	for got.Load() < messages && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // nor more than were sent
	if n := got.Load(); n != messages {
		t.Fatalf("the subscriber got %d of %d messages", n, messages)
	}
}

func TestNetworkClientsCannotPublish(t *testing.T) {
	b := startBroker(t, Access{Anonymous: true})
	watcher := connect(t, "tcp://"+b.Addrs()[0].String())
	got := make(chan string, 4)
	watcher.Subscribe("#", 0, func(_ paho.Client, m paho.Message) { got <- m.Topic() }).WaitTimeout(5 * time.Second)

	intruder := connect(t, "tcp://"+b.Addrs()[0].String())
	intruder.Publish("NICO/v1/machine/m1/state", 1, true, `{"state":"forged"}`).WaitTimeout(5 * time.Second)
	// A message Slipway itself publishes afterwards proves the watcher is
	// listening; the forged one, sent first, must not arrive before it.
	if err := b.Publish("slipway/v1/probe", []byte("x"), false, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case topic := <-got:
		if topic != "slipway/v1/probe" {
			t.Fatalf("a network client published on %s", topic)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the broker's own message did not arrive")
	}
}

func TestTakenPortIsAClearError(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"tcp", Config{Addr: loopback, Port: port}, "mqtt.port"},
		{"websocket", Config{Addr: loopback, Port: testkit.FreePort(t, "tcp"), WebSocketPort: port}, "mqtt.websocket_port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			var le *config.ListenError
			if !errors.As(err, &le) || le.Field != tt.field || !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("want a ListenError for %s wrapping EADDRINUSE, got %v", tt.field, err)
			}
		})
	}
}

// A web page may use MQTT over WebSocket only from this host or an origin
// the config lists; programs send no Origin and are let in.
func TestWebSocketOrigins(t *testing.T) {
	b := startBroker(t, Access{Anonymous: true}, func(c *Config) { c.WebSocketOrigins = []string{"https://dash.example"} })
	url := "ws://" + b.Addrs()[1].String() + "/mqtt"
	for origin, want := range map[string]int{"": 101, "https://dash.example": 101, "http://127.0.0.1:1234": 101, "https://evil.example": 403} {
		h := http.Header{"Sec-WebSocket-Protocol": {"mqtt"}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, err := websocket.DefaultDialer.Dial(url, h)
		if c != nil {
			c.Close()
		}
		if resp == nil || resp.StatusCode != want {
			t.Errorf("Origin %q: %v %v, want %d", origin, resp, err, want)
		}
	}
}

// Retained machine states outlive mochi's default day: a machine that has
// been ready for a week still shows as ready to a new subscriber.
func TestRetainedStatesAreNotExpiredAfterADay(t *testing.T) {
	b := startBroker(t, Access{})
	const week = 7 * 24 * 60 * 60
	if got := b.server.Options.Capabilities.MaximumMessageExpiryInterval; got < 10*week {
		t.Fatalf("retained messages are deleted after %d s: a machine's state would vanish after that", got)
	}
}
