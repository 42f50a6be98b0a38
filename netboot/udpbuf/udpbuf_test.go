package udpbuf

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// A socket gets the whole buffer when the process may force it (root or
// CAP_NET_ADMIN), and the kernel's cap, net.core.rmem_max, when it may not.
func TestGrowConn(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := GrowConn(c); err != nil {
		t.Fatal(err)
	}
	got, err := Of(c)
	if err != nil {
		t.Fatal(err)
	}
	want := 2 * Size // the kernel doubles what it is asked for
	if os.Geteuid() != 0 {
		b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
		if err != nil {
			t.Skipf("not root, and the kernel's cap is unreadable: %v", err)
		}
		max, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		want = min(want, 2*max)
	}
	if got < want {
		t.Fatalf("receive buffer %d bytes after GrowConn; want %d", got, want)
	}
}
