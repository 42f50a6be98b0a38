package wiring

import (
	"net/netip"
	"time"

	"github.com/slipway/slipway/appliance/config"
)

// DemoPorts are the unprivileged ports the demo listens on, on 127.0.0.1.
type DemoPorts struct {
	HTTP, MQTT, WebSocket, TFTP, DHCP int
	USM                               int // 0: off
	HTTPS                             int // the console and API over TLS; 0: off
}

// DefaultDemoPorts keep clear of the well-known ports, so the demo needs no root.
func DefaultDemoPorts() DemoPorts {
	return DemoPorts{HTTP: 8080, MQTT: 1883, WebSocket: 8083, TFTP: 6969, DHCP: 6767, USM: 5497, HTTPS: 8443}
}

// DemoProfile is the boot profile the demo's machines use.
const DemoProfile = "demo"

// DemoSiteID is the demo's site id, which NICo's tray requests name.
const DemoSiteID = "00000000-0000-4000-8000-00000000de40"

// DemoInventory is what the demo's config knows in advance.
type DemoInventory struct {
	Machines       []config.Machine
	BMCCredentials map[string]config.BMCCredentials
	Users          []config.User
}

// DemoConfig is the configuration `slipway demo` runs: the embedded defaults
// on loopback with unprivileged ports, data in dataDir, and the given
// simulated machines as inventory, booting the demo profile. DHCP answers
// on loopback, unicast, for simulated nodes; ports.DHCP 0 turns it off.
func DemoConfig(dataDir string, ports DemoPorts, inv DemoInventory, cmdline string) (*config.Config, error) {
	cfg, err := config.Defaults()
	if err != nil {
		return nil, err
	}
	cfg.LAN = config.LAN{Interface: loopbackInterface(), Address: "127.0.0.1/8"}
	cfg.DataDir = dataDir
	cfg.HTTP.Port = ports.HTTP
	cfg.HTTPS.Port = ports.HTTPS
	// The whole simulated fleet comes from 127.0.0.1: one address may use
	// every connection.
	cfg.HTTP.MaxConnectionsPerAddress = cfg.HTTP.MaxConnections
	cfg.MQTT.Port = ports.MQTT
	cfg.MQTT.WebSocketPort = ports.WebSocket
	cfg.TFTP.Port = ports.TFTP
	cfg.USM.Port = ports.USM
	cfg.DHCP.Mode = "off"
	if ports.DHCP != 0 {
		cfg.DHCP.Mode, cfg.DHCP.Port = "full", ports.DHCP
		cfg.DHCP.Range = config.Range{Start: "127.0.1.1", End: "127.0.1.254"}
	}
	cfg.Profiles = map[string]config.Profile{DemoProfile: {Kernel: "demo/vmlinuz", Initrd: "demo/initrd.img", Cmdline: cmdline}}
	cfg.DefaultProfile = DemoProfile
	cfg.Machines, cfg.BMCCredentials, cfg.Users = inv.Machines, inv.BMCCredentials, inv.Users
	// Emulated BMCs answer at once: poll them often, so that the demo shows
	// power changes within seconds.
	cfg.BMC.PollInterval = 2 * time.Second
	cfg.NICo.SiteID = DemoSiteID
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// loopbackInterface is the name of the interface holding 127.0.0.1.
func loopbackInterface() string {
	if name := interfaceWith(netip.AddrFrom4([4]byte{127, 0, 0, 1})); name != "" {
		return name
	}
	return "lo"
}
