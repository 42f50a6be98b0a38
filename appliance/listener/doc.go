// Package listener keeps a TCP listener accepting through a shortage of
// file descriptors or kernel memory.
//
// accept(2) fails with EMFILE when the process holds as many descriptors
// as its limit allows: a site booting at once can get there (an idle iPXE
// connection per machine, a socket per TFTP transfer). Neither fasthttp
// nor the MQTT broker's listener tells that apart from a closed socket:
// both stopped accepting for good, and the HTTP door's stop took the
// whole appliance down. A Patient listener instead waits, doubling from
// 5 ms to 1 s as net/http does, and tries again: the connections wait in
// the kernel's queue until some close. It says why, at most once a minute,
// with the limit and what to raise.
package listener
