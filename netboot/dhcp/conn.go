package dhcp

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"

	"github.com/slipway/slipway/netboot/udpbuf"
)

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
	udpbuf.Grow(fd) // a site's DISCOVERs come all at once
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
