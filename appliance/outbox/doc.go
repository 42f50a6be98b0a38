// Package outbox carries what the model announces: every message a change
// enqueues is written in the transaction of that change, so that a message
// is never sent for a change that was rolled back and never lost for one
// that committed.
//
// Consumers (the MQTT relay, the console's stream, an upstream bridge) read
// the outbox in commit order, each from its own durable cursor, and are
// woken after each commit instead of polling. Events are pruned once every
// consumer has handled them and they are older than Config.Keep; a consumer
// that stopped reading holds pruning back only up to Config.MaxEvents
// events, so that it cannot fill the disk (what it then misses is logged).
package outbox
