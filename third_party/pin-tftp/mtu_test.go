package tftp

import (
	"net"
	"testing"
	"time"
)

// The MTU is looked up once per mtuFresh, and again after it.
func TestMTUCacheLooksUpOncePerWhile(t *testing.T) {
	ifs, err := net.Interfaces()
	if err != nil || len(ifs) == 0 {
		t.Skip("no interfaces to look up")
	}
	now := time.Unix(1000, 0)
	c := mtuCache{now: func() time.Time { return now }}
	if mtu, ok := c.mtu(ifs[0].Index); !ok || mtu != ifs[0].MTU {
		t.Fatalf("MTU %d (%v), want %d", mtu, ok, ifs[0].MTU)
	}
	c.byIndex.Store(ifs[0].Index, mtuEntry{1234, now}) // as if the interface had changed
	if mtu, _ := c.mtu(ifs[0].Index); mtu != 1234 {
		t.Fatalf("looked up again within mtuFresh: %d", mtu)
	}
	now = now.Add(mtuFresh)
	if mtu, _ := c.mtu(ifs[0].Index); mtu != ifs[0].MTU {
		t.Fatalf("after mtuFresh the MTU is %d, want %d looked up again", mtu, ifs[0].MTU)
	}
	if _, ok := c.mtu(1 << 30); ok {
		t.Fatal("an interface that does not exist has an MTU")
	}
}
