// Package broker is Slipway's embedded MQTT broker (mochi-mqtt): a TCP and a
// WebSocket listener on the LAN IP, an access hook, and Publish for the
// appliance's own events.
//
// Listeners are bound before the broker starts, so a taken port fails
// start-up with a clear error instead of a log line after the fact.
//
// Access: Slipway publishes through mochi's inline client, which no ACL
// stops. Network clients may connect anonymously and subscribe, but may
// publish nothing. Named users and per-topic rules come with the event bus.
package broker
