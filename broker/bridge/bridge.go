package bridge

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/broker"
)

// Consumer is the bridge's place in the outbox.
type Consumer interface {
	Woken() <-chan struct{}
	Next(ctx context.Context, limit int) ([]outbox.Event, error)
	// After reads past the place, for batches in flight.
	After(ctx context.Context, id int64, limit int) ([]outbox.Event, error)
	// Handled moves past id; the place is stored in the background (an
	// event may be sent twice after a crash, never skipped).
	Handled(id int64)
	// Done moves past id and waits until that is stored.
	Done(ctx context.Context, id int64) error
	Place() int64
	Behind(ctx context.Context) (int64, error)
}

// Retainer holds the retained messages local subscribers are given.
type Retainer interface {
	Retained(filter string) []outbox.Message
}

// ConsumerName is the bridge's outbox cursor.
const ConsumerName = "bridge"

// Retain says which retain flag a tree's messages carry upstream.
type Retain int

// The retain settings.
const (
	AsPublished Retain = iota // the flag the event has here
	Always
	Never
)

// Tree is one tree of topics sent up.
type Tree struct {
	Filter string // NICO/v1/#
	QoS    byte
	Retain Retain
}

// Config says where the bridge goes and what it sends.
type Config struct {
	URL      string // mqtt://, mqtts://, ws:// or wss://
	ClientID string
	Username string
	Password string
	TLS      *tls.Config // for mqtts:// and wss:// (nil: the system's roots)
	Site     string
	// Prefix goes before every topic sent up ("sites/rack-a/").
	Prefix     string
	Trees      []Tree
	MaxBacklog int64
	Version    string // said in the presence message
	// Commands, if its Actions are set, lets the upstream act on the site.
	Commands Commands
	Log      *slog.Logger
	Now      func() time.Time
}

// Timings; variables of the Bridge so that tests can shorten them.
type timings struct {
	connect  time.Duration // to connect and be acknowledged
	ack      time.Duration // for a batch's acknowledgements
	retryMin time.Duration // the first pause after a failure
	retryMax time.Duration
	tick     time.Duration // backlog bound and lag, measured this often
}

var defaultTimings = timings{connect: 15 * time.Second, ack: 30 * time.Second, retryMin: time.Second, retryMax: 10 * time.Second, tick: 2 * time.Second}

// Events are read and sent in batches of batch; up to batchesInFlight
// batches may wait for their acknowledgements at once.
const (
	batch           = 1024
	batchesInFlight = 8
)

// Bridge sends the outbox up. Run it; Status says how it goes.
type Bridge struct {
	cfg    Config
	url    *url.URL // cfg.URL with its port
	shown  string   // url without credentials, for logs and errors
	from   Consumer
	local  Retainer
	times  timings
	status *tracker
}

// New is a bridge from the consumer's place; local is the broker whose
// retained messages are re-asserted upstream after each connect.
func New(cfg Config, from Consumer, local Retainer) (*Bridge, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("bridge: url: %w", err)
	}
	u = withDefaultPort(u)
	cfg.URL = u.String()
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	shown := *u
	shown.User = nil
	return &Bridge{cfg: cfg, url: u, shown: shown.String(), from: from, local: local, times: defaultTimings,
		status: newTracker(cfg, shown.String())}, nil
}

// withDefaultPort gives mqtt:// and mqtts:// URLs their IANA port, which
// the client library would otherwise dial without.
func withDefaultPort(u *url.URL) *url.URL {
	ports := map[string]string{"mqtt": "1883", "mqtts": "8883"}
	if p, ok := ports[u.Scheme]; ok && u.Port() == "" {
		c := *u
		c.Host = u.Hostname() + ":" + p
		return &c
	}
	return u
}

// Run connects, sends and reconnects until ctx ends.
func (b *Bridge) Run(ctx context.Context) error {
	pause := b.times.retryMin
	for ctx.Err() == nil {
		start := b.cfg.Now()
		connected, err := b.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		// Back off again only after a connection that held: one the
		// upstream drops at once (an ACL that refuses the box) must not
		// be retried every second.
		if connected && b.cfg.Now().Sub(start) >= b.times.retryMax {
			pause = b.times.retryMin
		}
		b.status.failed(err, b.cfg.Now())
		b.logFailure(ctx, err, pause)
		b.rest(ctx, pause)
		pause = min(2*pause, b.times.retryMax)
	}
	return nil
}

// rest pauses before the next connect, minding the backlog meanwhile
// (wait, below, is for the client library's tokens).
func (b *Bridge) rest(ctx context.Context, d time.Duration) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(min(b.times.tick, d))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
			b.measure(ctx)
		}
	}
}

// session is one connection: connect, send what waited, re-assert the
// retained view, then send as commits come, until the connection or ctx
// ends. connected says whether the broker accepted the connection.
func (b *Bridge) session(ctx context.Context) (connected bool, err error) {
	ctx, endSession := context.WithCancel(ctx) // ends the commands' runner with the connection
	defer endSession()
	lost := make(chan error, 1)
	client := paho.NewClient(b.options(lost))
	if err := wait(ctx, client.Connect(), b.times.connect); err != nil {
		return false, fmt.Errorf("connect to %s: %w", b.shown, err)
	}
	defer client.Disconnect(250)
	if err := wait(ctx, b.presence(client, true), b.times.ack); err != nil {
		return true, fmt.Errorf("announce this site: %w", err)
	}
	b.status.connected(b.cfg.Now())
	b.measure(ctx)
	b.cfg.Log.Info("bridge connected to the upstream broker", "url", b.shown, "client_id", b.cfg.ClientID, "backlog", b.Status().Backlog)
	if err := b.listen(ctx, client); err != nil {
		return true, err
	}
	if err := b.catchUp(ctx, client); err != nil {
		return true, err
	}
	tick := time.NewTicker(b.times.tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// A clean stop: the will is not sent, so say it.
			_ = wait(context.Background(), b.presence(client, false), time.Second)
			return true, nil
		case err := <-lost:
			return true, fmt.Errorf("connection to %s lost: %w", b.shown, err)
		case <-b.from.Woken():
			if _, err := b.drain(ctx, client); err != nil {
				return true, err
			}
		case <-tick.C:
			b.measure(ctx)
		}
	}
}

// catchUp sends every event that waited, then the retained view.
func (b *Bridge) catchUp(ctx context.Context, client paho.Client) error {
	start := b.cfg.Now()
	n, err := b.drain(ctx, client)
	if err != nil {
		return err
	}
	if n > 0 {
		now := b.cfg.Now()
		took := now.Sub(start)
		c := CatchUp{Events: n, Seconds: took.Seconds(), PerSecond: float64(n) / max(took.Seconds(), 0.001), At: now}
		b.status.caughtUp(c)
		b.cfg.Log.Info("bridge sent the events that waited for the uplink", "events", n, "took", took.Round(time.Millisecond), "per_second", int(c.PerSecond))
	}
	re, err := b.reassert(ctx, client)
	if err != nil {
		return err
	}
	b.cfg.Log.Info("bridge re-asserted the retained view upstream", "messages", re)
	return nil
}

func (b *Bridge) options(lost chan<- error) *paho.ClientOptions {
	will, _ := b.presencePayload(false)
	o := paho.NewClientOptions().AddBroker(b.cfg.URL).SetClientID(b.cfg.ClientID).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(b.times.connect).SetWriteTimeout(b.times.ack).
		SetKeepAlive(30*time.Second).SetPingTimeout(10*time.Second).
		SetBinaryWill(b.presenceTopic(), will, 1, true).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	if b.cfg.Username != "" {
		o.SetUsername(b.cfg.Username).SetPassword(b.cfg.Password)
	}
	if b.cfg.TLS != nil {
		o.SetTLSConfig(b.cfg.TLS)
	}
	o.SetCustomOpenConnectionFn(dialBatched(b.url, b.cfg.TLS, b.times.connect))
	return o
}

// drain sends every event after the bridge's place, oldest first, a batch
// at a time with up to batchesInFlight batches unacknowledged (a round
// trip per batch would bound the rate by the upstream's latency), and
// moves the place past each batch once all of it is acknowledged.
func (b *Bridge) drain(ctx context.Context, client paho.Client) (int, error) {
	n, readTo := 0, b.from.Place()
	var window []sentBatch
	more := true
	for {
		if more && len(window) < batchesInFlight {
			events, err := b.from.After(ctx, readTo, batch)
			if err != nil {
				return n, err
			}
			if len(events) > 0 {
				window = append(window, b.send(client, events))
				readTo = events[len(events)-1].ID
			}
			more = len(events) == batch
			continue
		}
		if len(window) == 0 {
			return n, nil
		}
		oldest := window[0]
		for _, t := range oldest.tokens {
			if err := wait(ctx, t, b.times.ack); err != nil {
				return n, fmt.Errorf("send to %s: %w", b.shown, err)
			}
		}
		b.from.Handled(oldest.last)
		b.status.sent(len(oldest.tokens))
		n += len(oldest.tokens)
		window = window[1:]
	}
}

// sentBatch is a batch published, waiting for its acknowledgements.
type sentBatch struct {
	tokens []paho.Token
	last   int64 // the batch's last event
}

// send publishes the events that a tree takes.
func (b *Bridge) send(client paho.Client, events []outbox.Event) sentBatch {
	s := sentBatch{tokens: make([]paho.Token, 0, len(events)), last: events[len(events)-1].ID}
	for _, e := range events {
		if m, ok := b.upstream(e.Message); ok {
			s.tokens = append(s.tokens, client.Publish(m.Topic, m.QoS, m.Retain, m.Payload))
		}
	}
	return s
}

// upstream is m as sent up: under the prefix, with its tree's QoS and
// retain flag; ok is false if no tree takes it.
func (b *Bridge) upstream(m outbox.Message) (outbox.Message, bool) {
	for _, t := range b.cfg.Trees {
		if !broker.Matches(t.Filter, m.Topic) {
			continue
		}
		retain := m.Retain
		switch t.Retain {
		case Always:
			retain = true
		case Never:
			if len(m.Payload) == 0 {
				return m, false // it clears a retained message: nothing to say
			}
			retain = false
		}
		return outbox.Message{Topic: b.cfg.Prefix + m.Topic, Payload: m.Payload, QoS: t.QoS, Retain: retain}, true
	}
	return m, false
}

// reassert publishes every retained message of the retained trees as the
// local broker holds it, and says how many.
func (b *Bridge) reassert(ctx context.Context, client paho.Client) (int, error) {
	seen := map[string]bool{}
	var tokens []paho.Token
	for _, t := range b.cfg.Trees {
		if t.Retain == Never {
			continue
		}
		for _, m := range b.local.Retained(t.Filter) {
			if seen[m.Topic] {
				continue
			}
			seen[m.Topic] = true
			if up, ok := b.upstream(m); ok {
				tokens = append(tokens, client.Publish(up.Topic, up.QoS, true, up.Payload))
			}
		}
	}
	for _, t := range tokens {
		if err := wait(ctx, t, b.times.ack); err != nil {
			return 0, fmt.Errorf("re-assert retained messages on %s: %w", b.shown, err)
		}
	}
	return len(tokens), nil
}

// presenceTopic is where the bridge says whether this site is online.
// Under no prefix, the topic names the site itself, so that sites do not
// overwrite each other's presence.
func (b *Bridge) presenceTopic() string {
	if b.cfg.Prefix == "" {
		return "slipway/v1/site/" + b.cfg.Site
	}
	return b.cfg.Prefix + "slipway/v1/site"
}

func (b *Bridge) presencePayload(online bool) ([]byte, error) {
	return json.Marshal(struct {
		Site    string `json:"site"`
		Online  bool   `json:"online"`
		Version string `json:"version,omitempty"`
		At      string `json:"at,omitempty"`
	}{b.cfg.Site, online, b.cfg.Version, b.presenceTime(online)})
}

// presenceTime is when the site said it; the will, written at connect,
// cannot know when it will be sent and says no time.
func (b *Bridge) presenceTime(online bool) string {
	if !online {
		return ""
	}
	return b.cfg.Now().UTC().Format(time.RFC3339)
}

func (b *Bridge) presence(client paho.Client, online bool) paho.Token {
	p, _ := b.presencePayload(online)
	return client.Publish(b.presenceTopic(), 1, true, p)
}

// measure enforces the backlog's bound and updates the backlog and lag.
func (b *Bridge) measure(ctx context.Context) {
	behind, err := b.from.Behind(ctx)
	if err != nil {
		b.cfg.Log.Warn("bridge: cannot measure its backlog", "error", err)
		return
	}
	var dropped int64
	if over := behind - b.cfg.MaxBacklog; over > 0 && b.dropOldest(ctx, over, behind) {
		dropped, behind = over, b.cfg.MaxBacklog
	}
	oldest := time.Time{}
	if behind > 0 {
		if next, err := b.from.Next(ctx, 1); err == nil && len(next) > 0 {
			oldest = next[0].At
		}
	}
	b.status.measured(behind, dropped, oldest, b.cfg.Now())
}

// dropOldest lets the oldest n events go: the disk matters more than an
// uplink that has been down this long.
func (b *Bridge) dropOldest(ctx context.Context, n, behind int64) bool {
	if err := b.from.Done(ctx, b.from.Place()+n); err != nil {
		b.cfg.Log.Warn("bridge: cannot let its oldest events go", "error", err)
		return false
	}
	b.cfg.Log.Warn("bridge backlog past bridge.max_backlog: its oldest events are dropped, never sent up",
		"dropped", n, "backlog", behind, "max_backlog", b.cfg.MaxBacklog, "dropped_before", b.Status().Dropped)
	return true
}

// logFailure logs a failed session: each new error, and the same one
// again at most once a minute, so that a long outage does not flood the log.
func (b *Bridge) logFailure(ctx context.Context, err error, retry time.Duration) {
	if !b.status.shouldLog(err, b.cfg.Now()) {
		return
	}
	b.measure(ctx)
	s := b.Status()
	b.cfg.Log.Warn("bridge: the upstream broker cannot be reached; events wait on disk",
		"url", s.URL, "error", err, "backlog", s.Backlog, "retry_in", retry)
}

// wait waits for t, at most d, or until ctx ends.
func wait(ctx context.Context, t paho.Token, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-timer.C:
		return fmt.Errorf("no answer in %s", d)
	case <-ctx.Done():
		return errors.Join(ctx.Err(), context.Cause(ctx))
	}
}
