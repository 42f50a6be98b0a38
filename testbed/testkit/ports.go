package testkit

import (
	"io"
	"net"
)

// FreePort asks the kernel for a loopback port that is free right now on
// network "tcp" or "udp"; it fails the test if there is none.
func FreePort(tb TB, network string) int {
	tb.Helper()
	return FreePorts(tb, network, 1)[0]
}

// FreePorts asks the kernel for n distinct loopback ports free right now on
// network "tcp" or "udp". Each is held open until all are chosen: ports
// asked for one after another may otherwise come back the same, and a
// config that gives two listeners one port is refused.
func FreePorts(tb TB, network string, n int) []int {
	tb.Helper()
	ports := make([]int, 0, n)
	for range n {
		port, held, err := holdFreePort(network)
		if err != nil {
			tb.Fatalf("free %s port: %v", network, err)
		}
		defer held.Close()
		ports = append(ports, port)
	}
	return ports
}

func holdFreePort(network string) (int, io.Closer, error) {
	switch network {
	case "tcp":
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, nil, err
		}
		return ln.Addr().(*net.TCPAddr).Port, ln, nil
	case "udp":
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return 0, nil, err
		}
		return c.LocalAddr().(*net.UDPAddr).Port, c, nil
	}
	return 0, nil, &net.AddrError{Err: "neither tcp nor udp", Addr: network}
}
