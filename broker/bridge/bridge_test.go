package bridge

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/broker"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

// fixture is a box: a store and its outbox, a local broker, and a bridge
// from them to url under sites/a/.
type fixture struct {
	commit *store.Committer
	local  *broker.Broker
	bridge *Bridge
	stop   func()
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newFixture(t *testing.T, url string, edit func(*Config)) *fixture {
	t.Helper()
	db, commit := testkit.OpenStore(t)
	o := outbox.New(outbox.Config{DB: db, Commit: commit, Log: quiet})
	from, err := o.Open(context.Background(), ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	local, err := broker.New(broker.Config{Addr: netip.MustParseAddr("127.0.0.1"), Port: testkit.FreePort(t, "tcp"), Access: broker.Access{Anonymous: true}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := local.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	cfg := Config{URL: url, ClientID: "slipway-a", Site: "a", Prefix: "sites/a/", MaxBacklog: 1_000_000, Log: quiet,
		Trees: []Tree{{Filter: "NICO/v1/#", QoS: 1}, {Filter: "slipway/v1/#", QoS: 1}}}
	if edit != nil {
		edit(&cfg)
	}
	b, err := New(cfg, from, local)
	if err != nil {
		t.Fatal(err)
	}
	b.times = timings{connect: 5 * time.Second, ack: 10 * time.Second, retryMin: 20 * time.Millisecond, retryMax: 200 * time.Millisecond, tick: 20 * time.Millisecond}
	f := &fixture{commit: commit, local: local, bridge: b}
	f.stop = testkit.RunUntilStopped(t, b.Run)
	return f
}

// machineState is the i-th event of n machines' state topics.
func machineState(i, machines int) outbox.Message {
	return outbox.Message{Topic: fmt.Sprintf("NICO/v1/machine/m%d/state", i%machines), Payload: fmt.Appendf(nil, `{"seq":%d}`, i), QoS: 1, Retain: true}
}

// enqueue commits the messages, a hundred to a transaction.
func (f *fixture) enqueue(t *testing.T, msgs []outbox.Message) {
	t.Helper()
	for chunk := range slices.Chunk(msgs, 100) {
		err := f.commit.Do(context.Background(), func(tx *store.Tx) error {
			for _, m := range chunk {
				outbox.Enqueue(tx, m)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// upstream is a subscriber on the upstream broker, keeping what it hears.
type upstream struct {
	mu   sync.Mutex
	got  []paho.Message
	conn paho.Client
}

func subscribe(t *testing.T, url, filter string, clean bool, edit ...func(*paho.ClientOptions)) *upstream {
	t.Helper()
	u := &upstream{}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID("watcher-" + strings.ReplaceAll(t.Name(), "/", "-")).SetCleanSession(clean).
		SetDefaultPublishHandler(u.keep)
	for _, e := range edit {
		e(opts)
	}
	u.conn = paho.NewClient(opts)
	if tok := u.conn.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect to %s: %v", url, tok.Error())
	}
	if tok := u.conn.Subscribe(filter, 1, u.keep); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { u.conn.Disconnect(10) })
	return u
}

func (u *upstream) keep(_ paho.Client, m paho.Message) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.got = append(u.got, m)
}

func (u *upstream) messages() []paho.Message {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.got)
}

// payloadsOf are the payloads heard on topic, in order.
func (u *upstream) payloadsOf(topic string) []string {
	var out []string
	for _, m := range u.messages() {
		if m.Topic() == topic {
			out = append(out, string(m.Payload()))
		}
	}
	return out
}

// heardTheLast says whether every topic of sent heard its last event.
func heardTheLast(u *upstream, sent []outbox.Message, prefix string) bool {
	last := map[string]string{}
	for _, m := range sent {
		last[prefix+m.Topic] = string(m.Payload)
	}
	for topic, p := range last {
		if !slices.Contains(u.payloadsOf(topic), p) {
			return false
		}
	}
	return true
}

// checkEveryEventInOrder checks that each machine's topic heard
// every event sent, in the order committed (a repeat after a reconnect
// allowed, a gap or a step back never).
func checkEveryEventInOrder(t *testing.T, u *upstream, sent []outbox.Message, prefix string) {
	t.Helper()
	want := map[string][]string{}
	for _, m := range sent {
		want[prefix+m.Topic] = append(want[prefix+m.Topic], string(m.Payload))
	}
	for topic, payloads := range want {
		got := u.payloadsOf(topic)
		next := 0
		for _, p := range got {
			at := slices.Index(payloads, p)
			if at < 0 {
				t.Fatalf("%s heard %s, never sent", topic, p)
			}
			if at > next {
				t.Fatalf("%s skipped %s: heard %s after %d of %d", topic, payloads[next], p, next, len(payloads))
			}
			if at == next {
				next++
			}
		}
		if next != len(payloads) {
			t.Fatalf("%s heard %d of %d events", topic, next, len(payloads))
		}
	}
}

func TestUpstreamHearsEveryEventInOrderUnderTheSitePrefix(t *testing.T) {
	up := startUpstream(t)
	watcher := subscribe(t, up.URL(), "#", true)
	f := newFixture(t, up.URL(), nil)
	testkit.WaitFor(t, "the bridge to connect", func() bool { return f.bridge.Status().Connected })
	var sent []outbox.Message
	for i := range 3000 {
		sent = append(sent, machineState(i, 40))
	}
	f.enqueue(t, append(slices.Clone(sent), outbox.Message{Topic: "other/tree", Payload: []byte("x")}))
	testkit.WaitFor(t, "every event upstream", func() bool { return f.bridge.Status().Sent >= int64(len(sent)) })
	testkit.WaitFor(t, "the watcher to hear them", func() bool { return heardTheLast(watcher, sent, "sites/a/") })
	checkEveryEventInOrder(t, watcher, sent, "sites/a/")
	for _, m := range watcher.messages() {
		if !strings.HasPrefix(m.Topic(), "sites/a/") || strings.Contains(m.Topic(), "other/tree") {
			t.Fatalf("heard %s upstream", m.Topic())
		}
	}
	if p := watcher.payloadsOf("sites/a/slipway/v1/site"); len(p) == 0 || !strings.Contains(p[0], `"online":true`) {
		t.Errorf("presence: %q", p)
	}
	if s := f.bridge.Status(); s.Backlog != 0 || s.Lag != 0 || s.LastError != "" {
		t.Errorf("status once caught up: %+v", s)
	}
}

// The upstream broker goes away for a while: what is committed meanwhile
// waits on disk, and once it is back arrives, all of it, in order.
func TestEventsWaitWhileTheUpstreamIsDownAndNoneIsLost(t *testing.T) {
	up := startUpstream(t, "persistence true", "autosave_interval 0")
	subscribe(t, up.URL(), "sites/#", false).conn.Disconnect(10) // a durable session, QoS 1
	f := newFixture(t, up.URL(), nil)
	testkit.WaitFor(t, "the bridge to connect", func() bool { return f.bridge.Status().Connected })
	var sent []outbox.Message
	for i := range 500 {
		sent = append(sent, machineState(i, 25))
	}
	f.enqueue(t, sent[:200])
	testkit.WaitFor(t, "the first events upstream", func() bool { return f.bridge.Status().Sent >= 200 })

	up.Stop()
	testkit.WaitFor(t, "the bridge to see the uplink gone", func() bool { return !f.bridge.Status().Connected })
	f.enqueue(t, sent[200:])
	testkit.WaitFor(t, "the backlog to be measured", func() bool { return f.bridge.Status().Backlog == 300 })
	if s := f.bridge.Status(); s.LastError == "" || s.Sent != 200 {
		t.Fatalf("while down: %+v", s)
	}
	up.Restart()
	testkit.WaitFor(t, "the backlog to drain", func() bool { s := f.bridge.Status(); return s.Connected && s.Backlog == 0 && s.Sent >= 500 })
	watcher := subscribe(t, up.URL(), "sites/#", false) // the session kept what came meanwhile
	testkit.WaitFor(t, "the watcher to hear every event", func() bool { return heardTheLast(watcher, sent, "sites/a/") })
	checkEveryEventInOrder(t, watcher, sent, "sites/a/")
	if c := f.bridge.Status().CatchUp; c == nil || c.Events != 300 || c.PerSecond <= 0 {
		t.Errorf("the catch-up after the outage: %+v", c)
	}
}

func TestBacklogPastItsBoundDropsTheOldest(t *testing.T) {
	up := startUpstream(t)
	up.Stop()
	f := newFixture(t, up.URL(), func(c *Config) { c.MaxBacklog = 1000 })
	var sent []outbox.Message
	for i := range 1500 {
		sent = append(sent, machineState(i, 1500))
	}
	f.enqueue(t, sent)
	testkit.WaitFor(t, "the oldest to be dropped", func() bool { return f.bridge.Status().Dropped == 500 })
	if s := f.bridge.Status(); s.Backlog != 1000 || s.Connected || s.Lag <= 0 {
		t.Fatalf("past the bound: %+v", s)
	}
	up.Restart()
	watcher := subscribe(t, up.URL(), "sites/#", true)
	testkit.WaitFor(t, "the rest upstream", func() bool { return f.bridge.Status().Sent >= 1000 })
	testkit.WaitFor(t, "the watcher to hear them", func() bool { return heardTheLast(watcher, sent[500:], "sites/a/") })
	for i, m := range sent {
		heard := len(watcher.payloadsOf("sites/a/"+m.Topic)) > 0
		if heard != (i >= 500) {
			t.Fatalf("event %d heard: %v (the oldest 500 are dropped, the newest 1000 sent)", i, heard)
		}
	}
}

// An upstream that lost its retained messages (a new broker here) is given
// the box's retained view again when the bridge connects.
func TestRetainedViewIsReassertedOnConnect(t *testing.T) {
	up := startUpstream(t)
	up.Stop()
	f := newFixture(t, up.URL(), func(c *Config) {
		c.Trees = append(c.Trees, Tree{Filter: "slipway/v1/bmc/#", QoS: 1, Retain: Never})
	})
	for _, m := range []outbox.Message{{Topic: "NICO/v1/machine/m1/state", Payload: []byte(`{"state":"ready"}`)}, {Topic: "slipway/v1/task/t1", Payload: []byte(`{}`)}} {
		if err := f.local.Publish(m.Topic, m.Payload, true, 1); err != nil {
			t.Fatal(err)
		}
	}
	up.Restart()
	testkit.WaitFor(t, "the bridge to connect", func() bool { return f.bridge.Status().Connected })
	late := subscribe(t, up.URL(), "sites/#", true) // only retained messages reach it
	testkit.WaitFor(t, "the retained view upstream", func() bool {
		return len(late.payloadsOf("sites/a/NICO/v1/machine/m1/state")) == 1 && len(late.payloadsOf("sites/a/slipway/v1/task/t1")) == 1
	})
}

func TestUpstreamMessage(t *testing.T) {
	b := &Bridge{cfg: Config{Prefix: "sites/a/", Trees: []Tree{
		{Filter: "NICO/v1/#", QoS: 1},
		{Filter: "slipway/v1/bmc/#", QoS: 0, Retain: Never},
		{Filter: "slipway/v1/#", QoS: 2, Retain: Always},
	}}}
	tests := []struct {
		name string
		in   outbox.Message
		want outbox.Message
		sent bool
	}{
		{"as published", outbox.Message{Topic: "NICO/v1/machine/m/state", Payload: []byte("x"), Retain: true}, outbox.Message{Topic: "sites/a/NICO/v1/machine/m/state", Payload: []byte("x"), QoS: 1, Retain: true}, true},
		{"first tree wins", outbox.Message{Topic: "slipway/v1/bmc/b", Payload: []byte("x"), Retain: true}, outbox.Message{Topic: "sites/a/slipway/v1/bmc/b", Payload: []byte("x"), QoS: 0}, true},
		{"a clear where nothing is retained", outbox.Message{Topic: "slipway/v1/bmc/b", Retain: true}, outbox.Message{}, false},
		{"always retained", outbox.Message{Topic: "slipway/v1/task/t", Payload: []byte("x")}, outbox.Message{Topic: "sites/a/slipway/v1/task/t", Payload: []byte("x"), QoS: 2, Retain: true}, true},
		{"in no tree", outbox.Message{Topic: "NICO/v2/x", Payload: []byte("x")}, outbox.Message{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, sent := b.upstream(tt.in)
			if sent != tt.sent || sent && (got.Topic != tt.want.Topic || string(got.Payload) != string(tt.want.Payload) || got.QoS != tt.want.QoS || got.Retain != tt.want.Retain) {
				t.Errorf("upstream(%+v) = %+v, %v; want %+v, %v", tt.in, got, sent, tt.want, tt.sent)
			}
		})
	}
}

func TestPresenceNamesTheSiteWithoutAPrefix(t *testing.T) {
	for prefix, want := range map[string]string{"sites/a/": "sites/a/slipway/v1/site", "": "slipway/v1/site/a"} {
		if got := (&Bridge{cfg: Config{Prefix: prefix, Site: "a"}}).presenceTopic(); got != want {
			t.Errorf("prefix %q: presence at %s, want %s", prefix, got, want)
		}
	}
}

func TestURLGetsItsDefaultPort(t *testing.T) {
	for in, want := range map[string]string{"mqtt://c": "mqtt://c:1883", "mqtts://c": "mqtts://c:8883", "mqtt://c:1": "mqtt://c:1", "ws://c/mqtt": "ws://c/mqtt"} {
		b, err := New(Config{URL: in}, nil, nil)
		if err != nil || b.cfg.URL != want {
			t.Errorf("%s: %q, %v; want %s", in, b.cfg.URL, err, want)
		}
	}
}

// MQTT over WebSocket, as a broker behind an HTTP proxy takes it.
func TestOverWebSocket(t *testing.T) {
	wsPort := testkit.FreePort(t, "tcp")
	up := startUpstream(t, fmt.Sprintf("listener %d 127.0.0.1", wsPort), "protocol websockets")
	watcher := subscribe(t, up.URL(), "sites/#", true)
	f := newFixture(t, fmt.Sprintf("ws://127.0.0.1:%d/mqtt", wsPort), nil)
	sent := []outbox.Message{machineState(1, 10), machineState(2, 10), machineState(11, 10)}
	f.enqueue(t, sent)
	testkit.WaitFor(t, "the events over WebSocket", func() bool { return heardTheLast(watcher, sent, "sites/a/") })
	checkEveryEventInOrder(t, watcher, sent, "sites/a/")
}

// startUpstream is a mosquitto upstream that holds every message for its
// subscribers: with mosquitto's default queue (1,000 a client) a watcher
// that the bridge outruns would lose messages, and the tests would count
// that as the bridge's.
func startUpstream(t *testing.T, conf ...string) *testkit.Mosquitto {
	t.Helper()
	return testkit.StartMosquitto(t, append(conf, "max_queued_messages 0")...)
}

// BenchmarkDrain sends a backlog of b.N events to a local mosquitto, from
// connect to the last acknowledgement (make bench-bridge compares it with
// mosquitto's own bridge).
func BenchmarkDrain(b *testing.B) {
	up := testkit.StartMosquitto(b, "max_queued_messages 0")
	up.Stop()
	db, commit := testkit.OpenStore(b)
	o := outbox.New(outbox.Config{DB: db, Commit: commit, Log: quiet})
	from, err := o.Open(context.Background(), ConsumerName)
	if err != nil {
		b.Fatal(err)
	}
	err = commit.Do(context.Background(), func(tx *store.Tx) error {
		for i := range b.N {
			outbox.Enqueue(tx, machineState(i, 200))
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	br, err := New(Config{URL: up.URL(), ClientID: "bench", Site: "a", Prefix: "sites/a/", MaxBacklog: 1_000_000, Log: quiet,
		Trees: []Tree{{Filter: "NICO/v1/#", QoS: 1}}}, from, emptyRetainer{})
	if err != nil {
		b.Fatal(err)
	}
	br.times.retryMin, br.times.retryMax = 10*time.Millisecond, 10*time.Millisecond
	up.Restart()
	b.ResetTimer()
	stop := testkit.RunUntilStopped(b, br.Run)
	testkit.WaitForWithin(b, 5*time.Minute, "the backlog sent", func() bool { return br.Status().Sent >= int64(b.N) })
	b.StopTimer()
	stop()
}

type emptyRetainer struct{}

func (emptyRetainer) Retained(string) []outbox.Message { return nil }

// An upstream that accepts the connection and drops it at the first
// message (an ACL refusing the box, as mosquitto may): the bridge backs
// off as it would from one it cannot reach, rather than reconnecting at
// its shortest pause.
func TestBacksOffFromAnUpstreamThatDropsItAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var connects atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connects.Add(1)
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				if readPacket(r) != nil {
					return
				}
				c.Write([]byte{0x20, 0x02, 0x00, 0x00}) // CONNACK, accepted
				readPacket(r)                           // the first PUBLISH: drop
			}()
		}
	}()
	f := newFixture(t, "mqtt://"+ln.Addr().String(), nil)
	time.Sleep(time.Second)
	f.stop()
	// Pauses of 20 ms doubling to 200 ms: about seven tries in a second;
	// at the shortest pause every time, fifty.
	if n := connects.Load(); n < 2 || n > 15 {
		t.Errorf("%d connects in a second", n)
	}
	if s := f.bridge.Status(); s.Connected || s.LastError == "" {
		t.Errorf("status: %+v", s)
	}
}

// readPacket reads one MQTT packet (its fixed header says how long).
func readPacket(r *bufio.Reader) error {
	if _, err := r.ReadByte(); err != nil {
		return err
	}
	n, shift := 0, 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			return err
		}
		n |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			break
		}
		shift += 7
	}
	_, err := r.Discard(n)
	return err
}
