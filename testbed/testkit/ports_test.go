package testkit

import (
	"slices"
	"testing"
)

func TestFreePortsAreDistinct(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		ports := FreePorts(t, network, 64)
		slices.Sort(ports)
		if distinct := len(slices.Compact(ports)); distinct != 64 {
			t.Errorf("%s: %d distinct ports of 64", network, distinct)
		}
	}
}
