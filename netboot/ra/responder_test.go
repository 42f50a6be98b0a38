package ra

import (
	"net"
	"testing"
)

func TestAdvertisementSaysNoRouter(t *testing.T) {
	ra := Advertisement(net.HardwareAddr{0x52, 0x54, 0, 1, 2, 3})
	if ra[0] != 134 || ra[1] != 0 {
		t.Fatalf("type/code = %d/%d, want router advertisement 134/0", ra[0], ra[1])
	}
	if ra[4] != 64 || ra[5] != 0 {
		t.Errorf("hop limit %d, flags %#x: want 64 and no managed/other flags", ra[4], ra[5])
	}
	if ra[6] != 0 || ra[7] != 0 {
		t.Errorf("router lifetime %d: a non-router must advertise 0", int(ra[6])<<8|int(ra[7]))
	}
	if len(ra) != 16+8 || ra[16] != 1 || ra[17] != 1 || net.HardwareAddr(ra[18:24]).String() != "52:54:00:01:02:03" {
		t.Errorf("source link-layer option: % x", ra[16:])
	}
}

func TestNoLinkLocalOnLoopback(t *testing.T) {
	if _, err := New("lo", nil); err == nil {
		t.Fatal("loopback has no link-local address; New must say so")
	}
}
