package testbed

import (
	"fmt"

	"github.com/slipway/slipway/appliance/config"
)

// Fleet describes n simulated machines racked eight to a rack, with
// locally administered MACs (02:…) that no real NIC carries.
func Fleet(n int) []config.Machine {
	const perRack = 8
	out := make([]config.Machine, n)
	for i := range n {
		rack := i/perRack + 1
		tray := i % perRack
		out[i] = config.Machine{
			ID:       fmt.Sprintf("sim-r%02d-t%02d", rack, tray),
			MACs:     []string{FleetMAC(i)},
			Hostname: fmt.Sprintf("sim-%03d", i),
			Rack:     &config.Rack{ID: fmt.Sprintf("r%02d", rack), Name: fmt.Sprintf("Demo rack %d", rack), Tray: tray, TrayType: "compute"},
		}
	}
	return out
}

// FleetMAC is the boot MAC of the i-th simulated machine.
func FleetMAC(i int) string {
	return fmt.Sprintf("02:53:57:%02x:%02x:%02x", byte(i>>16), byte(i>>8), byte(i))
}
