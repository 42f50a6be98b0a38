// Package broker is Slipway's embedded MQTT broker (mochi-mqtt): a TCP and a
// WebSocket listener on the LAN IP, the access hook, the bus's topics and
// payloads (events.go), and Publish for the appliance's own events.
//
// Listeners are bound before the broker starts, so a taken port fails
// start-up with a clear error instead of a log line after the fact.
//
// Access: Slipway publishes through mochi's inline client, which no ACL
// stops. Network clients may subscribe anonymously (unless that is turned
// off) and publish nothing; named users with bcrypt passwords get what
// their topic rules say, except that nobody but Slipway ever publishes
// under NICO/ or slipway/. There is one access hook: mochi OR-combines
// hooks, so a second, more permissive one would open the bus.
package broker
