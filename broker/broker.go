package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/appliance/listener"
	"github.com/slipway/slipway/appliance/outbox"
)

// Config says where the broker listens.
type Config struct {
	Addr          netip.Addr // the LAN IP
	Port          int        // MQTT over TCP
	WebSocketPort int        // MQTT over WebSocket; 0 disables it
	// WebSocketOrigins are the web origins (https://dash.example) whose
	// pages may use MQTT over WebSocket, beside this host's own.
	WebSocketOrigins []string
	Access           Access
	Limits           Limits // zero fields take defaults
	Logger           *slog.Logger
}

// Broker is a running embedded MQTT broker.
type Broker struct {
	server *mqtt.Server
	addrs  []net.Addr
	log    *slog.Logger
	limits Limits
	// refused counts connections closed at the connection limit.
	refused atomic.Int64
	slots   *connectionLimit
}

// retainedForever is as long as a retained message is kept, in seconds.
const retainedForever = 100 * 365 * 24 * 60 * 60

// writeBatchBytes is how much a subscriber's queued packets may fill
// before one write sends them: mochi's default (2 KiB, six state messages)
// made a write system call per few messages in a fan-out. The buffer
// exists only while packets are queued.
const writeBatchBytes = 32 << 10

// New binds the broker's listeners. Nothing is served until Start.
func New(cfg Config) (*Broker, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	limits := cfg.Limits.withDefaults()
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = limits.MaxPacketBytes
	caps.MaximumClients = int64(limits.MaxConnections)
	caps.MaximumClientWritesPending = limits.MaxQueuedPerClient
	// A QoS 1 or 2 message is held for its acknowledgement as long as it
	// may wait to be sent: with mochi's 8,192 in flight, a subscriber that
	// paused for a few seconds of a storm lost the messages past them
	// although its queue had room. Packet ids bound it at 65,535.
	caps.MaximumInflight = uint16(min(limits.MaxQueuedPerClient, math.MaxUint16))
	// mochi deletes any retained message older than this (a day by
	// default): a machine that stays ready for a day would lose its
	// retained state, and a new subscriber would not see it. 0 would turn
	// that off but also expire QoS 2 acknowledgements at once, so: a
	// century. A client's own MQTT 5 message expiry still holds.
	caps.MaximumMessageExpiryInterval = retainedForever
	server := mqtt.New(&mqtt.Options{InlineClient: true, Capabilities: caps, ClientNetWriteBufferSize: writeBatchBytes, Logger: slog.New(mochiLog{log.Handler()}).With("part", "mqtt")})
	if err := server.AddHook(newAccessHook(cfg.Access, log), nil); err != nil {
		return nil, fmt.Errorf("mqtt: add access hook: %w", err)
	}
	b := &Broker{server: server, log: log, limits: limits}
	tcp, err := listen(cfg.Addr, cfg.Port, "mqtt.port")
	if err != nil {
		return nil, err
	}
	// One limit across both listeners: a flood on either counts.
	slots := newConnectionLimit(limits, b.refusedAtLimit)
	b.slots = slots
	tcp = slots.with(listener.Patient(tcp, "mqtt", log))
	b.addrs = append(b.addrs, tcp.Addr())
	if err := server.AddListener(listeners.NewNet("tcp", tcp)); err != nil {
		tcp.Close()
		return nil, fmt.Errorf("mqtt: add TCP listener: %w", err)
	}
	if cfg.WebSocketPort != 0 {
		ws, err := listen(cfg.Addr, cfg.WebSocketPort, "mqtt.websocket_port")
		if err != nil {
			tcp.Close()
			return nil, err
		}
		ws = slots.with(listener.Patient(ws, "mqtt websocket", log))
		b.addrs = append(b.addrs, ws.Addr())
		if err := server.AddListener(newWebSocketListener("ws", ws, limits.ConnectTimeout, cfg.WebSocketOrigins)); err != nil {
			tcp.Close()
			ws.Close()
			return nil, fmt.Errorf("mqtt: add WebSocket listener: %w", err)
		}
	}
	return b, nil
}

// listen binds a TCP port and explains the common failure.
func listen(addr netip.Addr, port int, field string) (net.Listener, error) {
	hostPort := net.JoinHostPort(addr.String(), strconv.Itoa(port))
	ln, err := net.Listen("tcp", hostPort)
	if err != nil {
		return nil, &config.ListenError{Field: field, Addr: hostPort, Err: err, Peer: "program"}
	}
	return ln, nil
}

// Start serves the bound listeners in the background.
func (b *Broker) Start() error {
	if err := b.server.Serve(); err != nil {
		return fmt.Errorf("mqtt: start: %w", err)
	}
	return nil
}

// refusedAtLimit logs the first connection closed at the limit, and every
// thousandth after: a flood must not flood the log too.
func (b *Broker) refusedAtLimit() {
	if n := b.refused.Add(1); n%1000 == 1 {
		b.log.Warn("MQTT connection closed: the broker holds as many as mqtt.max_connections allows",
			"max_connections", b.limits.MaxConnections, "refused_so_far", n)
	}
}

// Refused is how many connections were closed at the connection limit.
func (b *Broker) Refused() int64 { return b.refused.Load() }

// Addrs are the addresses the broker listens on: TCP first, then WebSocket.
func (b *Broker) Addrs() []net.Addr { return b.addrs }

// Publish sends a message from Slipway itself.
func (b *Broker) Publish(topic string, payload []byte, retain bool, qos byte) error {
	if err := b.server.Publish(topic, payload, retain, qos); err != nil {
		return fmt.Errorf("mqtt: publish on %s: %w", topic, err)
	}
	return nil
}

// Retained are the retained messages whose topics filter matches, as
// subscribers here would be given them.
func (b *Broker) Retained(filter string) []outbox.Message {
	pks := b.server.Topics.Messages(filter)
	out := make([]outbox.Message, 0, len(pks))
	for _, pk := range pks {
		out = append(out, outbox.Message{Topic: pk.TopicName, Payload: pk.Payload, QoS: pk.FixedHeader.Qos, Retain: true})
	}
	return out
}

// Matches says whether an MQTT topic filter (NICO/v1/#) matches a topic.
func Matches(filter, topic string) bool { return covers(filter, topic) }

// Close disconnects clients and closes the listeners.
func (b *Broker) Close() error {
	err := b.server.Close()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("mqtt: close: %w", err)
	}
	return nil
}
