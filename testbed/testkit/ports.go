package testkit

import (
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
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
	ports, high := make([]int, 0, n), ephemeralLow()
	for range n {
		port, held, err := holdFreePort(network, high)
		if err != nil {
			tb.Fatalf("free %s port: %v", network, err)
		}
		defer held.Close()
		ports = append(ports, port)
	}
	return ports
}

// Ports are chosen below the kernel's ephemeral range: a port the kernel
// handed out as ephemeral and we released could be handed to any other
// process's outgoing socket (another test package running in parallel)
// before the test binds it again, and the test failed with "address already
// in use". Below the range only an explicit bind can take it.
const lowestTestPort = 10000

// holdFreePort binds a free port below high (the ephemeral range's first),
// or the kernel's choice when the range leaves too little room below it.
func holdFreePort(network string, high int) (int, io.Closer, error) {
	if high > lowestTestPort+1000 {
		for range 200 {
			if port, held, err := bindLoopback(network, lowestTestPort+rand.IntN(high-lowestTestPort)); err == nil {
				return port, held, nil
			}
		}
	}
	return bindLoopback(network, 0)
}

// bindLoopback binds port (0: the kernel's choice) on 127.0.0.1 and says
// which port it holds.
func bindLoopback(network string, port int) (int, io.Closer, error) {
	switch network {
	case "tcp":
		ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			return 0, nil, err
		}
		return ln.Addr().(*net.TCPAddr).Port, ln, nil
	case "udp":
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			return 0, nil, err
		}
		return c.LocalAddr().(*net.UDPAddr).Port, c, nil
	}
	return 0, nil, &net.AddrError{Err: "neither tcp nor udp", Addr: network}
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768 on
// Linux unless changed), or 0 where it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 0
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0
	}
	return low
}
