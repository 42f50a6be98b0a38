// Package bridge sends this box's events up to an MQTT broker that many
// boxes share, so that one subscriber there sees every site.
//
// The bridge is a durable consumer of the outbox ("bridge"), like the
// local relay but with a cursor of its own: an event leaves the outbox's
// hold only once the upstream broker acknowledged it (QoS 1 and 2) or it
// was written to the connection (QoS 0). While the uplink is down the
// events wait on disk, in commit order; past Config.MaxBacklog the oldest
// are let go, counted and logged. After each (re)connect the bridge sends
// what waited, then re-asserts every retained message of its trees as the
// local broker holds it, so that an upstream that lost its retained view
// (restarted without persistence, or new) matches the box again.
//
// Delivery is at least once: an event sent but not acknowledged before the
// connection dropped is sent again, after the ones before it, so the last
// message of a machine's topic upstream is always its newest state.
//
// Topics keep their shape under Config.Prefix (sites/rack-a/NICO/v1/...),
// and the bridge publishes its own presence, retained, at
// <prefix>slipway/v1/site: online with a clean connect, offline by its
// last will or at a clean stop.
package bridge
