// Package store is Slipway's durable state: one SQLite file (modernc.org/sqlite,
// pure Go) in WAL mode with a busy timeout, foreign keys on and synchronous
// FULL, so that a committed row survives a crash or a power cut.
//
// The schema lives in numbered migrations (migrations/NNNN_name.sql), applied
// in order at Open, each in its own transaction. A database from a newer
// Slipway is refused rather than guessed at.
//
// Reads are methods on Store. Writes go through Update, which runs a function
// in one IMMEDIATE transaction and hands it a Tx with typed writes, so a
// caller that changes several rows (a transition, its history row and the
// event to publish) changes all of them or none.
//
// DHCP leases have a journal of their own beside the database (leasejournal.go):
// a lease is durable once appended there, and every write transaction applies
// the journal's pending leases to the leases table before its own writes.
//
// store knows nothing of the rest of Slipway: states and payloads are opaque
// strings and bytes here; their meaning lives in the domain.
package store
