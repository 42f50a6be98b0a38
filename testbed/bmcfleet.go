package testbed

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/testbed/bmcemu"
)

// BMCFleet gives the simulated machines of Fleet(n) emulated BMCs: the
// i-th BMC's system has FleetMAC(i) as its first NIC, and when the BMC
// powers it on with a one-time network boot, the machine netboots through
// Slipway (Node.Boot), so that "provision" runs the whole chain.
type BMCFleet struct {
	Farm *bmcemu.Farm
}

// BMC credentials of the demo fleet.
const (
	DemoBMCUser     = "admin"
	DemoBMCPassword = "slipway-demo"
	// DemoBMCCredentials is their name under bmc_credentials.
	DemoBMCCredentials = "demo-bmc"
)

// StartBMCFleet starts n emulated BMCs on loopback. like is the node each
// network boot runs (its MAC is filled in); report hears how each went,
// one call at a time.
func StartBMCFleet(ctx context.Context, n int, like Node, report func(i int, r BootReport, err error)) (*BMCFleet, error) {
	return StartBMCFleetWith(ctx, n, like, report, nil)
}

// StartBMCFleetWith is StartBMCFleet with tweak (if set) applied to each
// emulator's configuration (a power shelf's firmware inventory, a fault).
func StartBMCFleetWith(ctx context.Context, n int, like Node, report func(i int, r BootReport, err error), tweak func(i int, c *bmcemu.Config)) (*BMCFleet, error) {
	var reporting sync.Mutex
	farm, err := bmcemu.StartFarm(n, false, func(i int, c *bmcemu.Config) {
		if tweak != nil {
			defer tweak(i, c)
		}
		c.Username, c.Password = DemoBMCUser, DemoBMCPassword
		c.Serial = fmt.Sprintf("SIM%06d", i)
		c.HostMACs = []string{FleetMAC(i)}
		c.OnBoot = func(ev bmcemu.BootEvent) {
			if ev.Source != "Pxe" && ev.Source != "UefiHttp" {
				return // it boots its installed OS: nothing for Slipway to see
			}
			node := like
			node.MAC, _ = net.ParseMAC(FleetMAC(i))
			r, err := node.Boot(ctx)
			if ctx.Err() == nil && report != nil {
				reporting.Lock()
				defer reporting.Unlock()
				report(i, r, err)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return &BMCFleet{Farm: farm}, nil
}

// Close stops every BMC.
func (f *BMCFleet) Close() { f.Farm.Close() }

// Inventory is Fleet(n) with each machine's BMC, and the credentials entry
// they use, whose password file is written into dir.
func (f *BMCFleet) Inventory(dir string) ([]config.Machine, map[string]config.BMCCredentials, error) {
	pwFile := filepath.Join(dir, "demo-bmc.password")
	if err := os.WriteFile(pwFile, []byte(DemoBMCPassword+"\n"), 0o600); err != nil {
		return nil, nil, fmt.Errorf("BMC password file: %w", err)
	}
	machines := Fleet(len(f.Farm.BMCs))
	for i, b := range f.Farm.BMCs {
		machines[i].BMC = &config.BMC{Endpoint: b.URL, Credentials: DemoBMCCredentials}
	}
	return machines, map[string]config.BMCCredentials{
		DemoBMCCredentials: {Username: DemoBMCUser, PasswordFile: pwFile},
	}, nil
}
