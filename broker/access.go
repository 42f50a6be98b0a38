package broker

import (
	"bytes"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// readOnlyAccess lets anyone connect and subscribe, and nobody on the
// network publish: every message on the bus comes from Slipway itself.
// It is the only access hook; mochi OR-combines hooks, so adding an
// allow-all hook beside it would open the bus.
type readOnlyAccess struct {
	mqtt.HookBase
}

func (h *readOnlyAccess) ID() string { return "slipway-read-only" }

func (h *readOnlyAccess) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

func (h *readOnlyAccess) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (h *readOnlyAccess) OnACLCheck(_ *mqtt.Client, _ string, write bool) bool { return !write }
