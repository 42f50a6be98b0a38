package dhcp

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"
)

// receiveBuffer is the DHCP socket's receive buffer: room for about ten
// thousand requests waiting to be read.
const receiveBuffer = 16 << 20

// listenOnInterface opens a UDP socket on 0.0.0.0:port that receives and
// sends through iface only, and may send broadcasts. Unlike the library's
// helper it does not set SO_REUSEPORT, so a second DHCP server on the same
// port is an error at start-up rather than a silent split of the traffic.
func listenOnInterface(iface string, port int) (*net.UDPConn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("create UDP socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "dhcp")
	defer f.Close() // FilePacketConn dups the descriptor
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
		return nil, fmt.Errorf("allow broadcasts: %w", err)
	}
	// A site powering on at once sends thousands of DISCOVERs within a few
	// milliseconds: the default buffer (about 200 KiB, a few hundred
	// packets) drops most of them, and each drop costs that machine the
	// firmware's four-second retransmission. Without CAP_NET_ADMIN the
	// kernel caps the size at net.core.rmem_max.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, receiveBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, receiveBuffer)
	}
	if iface != "" {
		if err := dhcpv4.BindToInterface(fd, iface); err != nil {
			return nil, fmt.Errorf("bind to interface %s: %w", iface, err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port}); err != nil {
		return nil, fmt.Errorf("bind UDP port %d: %w", port, err)
	}
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, err
	}
	conn, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return nil, errors.New("socket is not UDP")
	}
	return conn, nil
}
