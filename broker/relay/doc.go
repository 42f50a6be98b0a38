// Package relay publishes the outbox on the MQTT broker: every message a
// commit enqueued is published after that commit, in commit order (so in
// order per machine), from the outbox consumer "mqtt", whose cursor moves
// once a batch is out. Messages a crash left unpublished go out at the next
// start, before any client can connect.
package relay
