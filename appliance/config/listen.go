package config

import "fmt"

// ListenError is a port a door could not bind, with the configuration
// field that chose it: every door reports it alike, and a caller that sets
// the field some other way (the demo, by flag) can name that instead.
type ListenError struct {
	Field string // http.port, mqtt.port, tftp.port, dhcp.port, …
	Addr  string // what was bound: "10.88.0.1:80", "UDP 67 of eth1"
	Err   error
	// Peer is what usually holds the port ("program", "DHCP server").
	Peer string
	// Or is another way out, if there is one ("set dhcp.mode").
	Or string
}

func (e *ListenError) Error() string {
	fix := "change " + e.Field
	if e.Or != "" {
		fix += " or " + e.Or
	}
	return fmt.Sprintf("%s: cannot listen on %s: %v (is another %s using it? stop it, or %s)", e.Field, e.Addr, e.Err, e.Peer, fix)
}

func (e *ListenError) Unwrap() error { return e.Err }
