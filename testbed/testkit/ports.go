package testkit

import "net"

// FreePort asks the kernel for a loopback port that is free right now on
// network "tcp" or "udp"; it fails the test if there is none.
func FreePort(tb TB, network string) int {
	tb.Helper()
	switch network {
	case "tcp":
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("free TCP port: %v", err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	case "udp":
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			tb.Fatalf("free UDP port: %v", err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	tb.Fatalf("FreePort: network %q is neither tcp nor udp", network)
	return 0
}
