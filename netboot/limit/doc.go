// Package limit bounds what one client of a UDP door may ask for: a rate
// of requests (a token bucket per client) and a number of transfers at
// once. UDP has no connection to refuse, and a client's address or MAC is
// whatever its packets say, so the memory kept per client is bounded too:
// a flood of forged clients costs a bounded table, not the box.
package limit
