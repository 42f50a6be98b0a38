package testbed

import (
	"fmt"
	"net"
)

// FreePort asks the kernel for a loopback port that is free right now on
// network "tcp" or "udp", for tests and the demo.
func FreePort(network string) (int, error) {
	switch network {
	case "tcp":
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port, nil
	case "udp":
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	return 0, fmt.Errorf("FreePort: network %q is neither tcp nor udp", network)
}
