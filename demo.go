package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/wiring"
)

func demoCommand(stdout, stderr io.Writer) *cobra.Command {
	ports := wiring.DefaultDemoPorts()
	var machines int
	var keep bool
	var bridgeURL, bridgeSite string
	var interval, stageDelay time.Duration
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the real appliance on 127.0.0.1 with a simulated fleet (no root needed)",
		Long: `Run Slipway on 127.0.0.1 with unprivileged ports, a temporary data directory
and a simulated fleet, and print where to look. The simulated machines power
on one after another and netboot through the real DHCP, TFTP and HTTP doors
over loopback (DHCP by unicast to --dhcp-port): lease, loader over TFTP, iPXE
script, kernel and initrd over HTTP; then their installer fetches cloud-init
and reports every onboarding stage by heartbeat until the machine is ready.
Every state change is published on the MQTT bus. Ctrl-C stops it and removes
the data directory unless --keep-data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dataDir, err := os.MkdirTemp("", "slipway-demo-")
			if err != nil {
				return fmt.Errorf("demo: temporary data directory: %w", err)
			}
			if !keep {
				defer os.RemoveAll(dataDir)
			}
			node := testbed.Node{Onboard: true, StageDelay: stageDelay,
				DHCP: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ports.DHCP}, TFTPPort: ports.TFTP}
			inv, bmcs, err := demoInventory(cmd.Context(), stdout, dataDir, machines, node)
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			defer bmcs.Close()
			cfg, err := wiring.DemoConfig(dataDir, ports, inv, testbed.DemoProfileCmdline)
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			if bridgeURL != "" {
				cfg.Bridge.URL, cfg.Bridge.Site = bridgeURL, bridgeSite
				if err := cfg.Validate(); err != nil {
					return fmt.Errorf("demo: --bridge-url, --bridge-site: %w", err)
				}
			}
			if err := testbed.SeedDemoFiles(cfg.TFTPRoot(), cfg.AssetsDir(), cfg.TemplatesDir()); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			log := newLogger(stderr, config.Log{Level: "warn", Format: "text"})
			err = wiring.New(cfg, wiring.Options{Version: version, Logger: log, OnReady: func(u wiring.URLs) {
				printDemoBanner(stdout, u, dataDir, machines, keep, inv.Machines[0].ID)
				if ports.DHCP != 0 {
					go bootDemoFleet(cmd.Context(), stdout, ports, machines, interval, stageDelay)
				}
			}}).Run(cmd.Context())
			return inDemoTerms(err)
		},
	}
	f := cmd.Flags()
	f.IntVar(&machines, "machines", 16, "simulated machines in the inventory")
	f.BoolVar(&keep, "keep-data", false, "keep the data directory on exit")
	f.IntVar(&ports.HTTP, "http-port", ports.HTTP, "HTTP port")
	f.IntVar(&ports.MQTT, "mqtt-port", ports.MQTT, "MQTT port")
	f.IntVar(&ports.WebSocket, "mqtt-ws-port", ports.WebSocket, "MQTT over WebSocket port (0: off)")
	f.IntVar(&ports.TFTP, "tftp-port", ports.TFTP, "TFTP port")
	f.IntVar(&ports.DHCP, "dhcp-port", ports.DHCP, "DHCP port for the simulated fleet (0: no DHCP, no fleet boot)")
	f.IntVar(&ports.USM, "usm-port", ports.USM, "StarlingX USM API port (0: off)")
	f.IntVar(&ports.HTTPS, "https-port", ports.HTTPS, "the console and API over TLS (0: off)")
	f.StringVar(&bridgeURL, "bridge-url", "", "send the demo's events to this upstream MQTT broker (mqtt://host:1883; docs/bridge.md)")
	f.StringVar(&bridgeSite, "bridge-site", "demo", "the demo's site name upstream")
	f.DurationVar(&interval, "boot-interval", 500*time.Millisecond, "time between two simulated machines powering on")
	f.DurationVar(&stageDelay, "stage-delay", 400*time.Millisecond, "time each simulated installer spends per onboarding stage")
	return cmd
}

// inDemoTerms names the demo's flag where err names the configuration
// field it sets: the demo takes no configuration file.
func inDemoTerms(err error) error {
	var taken *config.ListenError
	if !errors.As(err, &taken) {
		return err
	}
	flag, ok := map[string]string{"mqtt.websocket_port": "--mqtt-ws-port", "mqtt.port": "--mqtt-port",
		"http.port": "--http-port", "tftp.port": "--tftp-port", "dhcp.port": "--dhcp-port", "usm.port": "--usm-port", "https.port": "--https-port"}[taken.Field]
	if !ok {
		return err
	}
	inFlags := *taken
	inFlags.Field, inFlags.Or = flag, ""
	return &inFlags
}

// Demo operator account, printed in the banner.
const (
	demoAdmin         = "admin"
	demoAdminPassword = "slipway-demo"
)

// demoInventory starts an emulated BMC for each simulated machine and
// returns the inventory naming them, with the demo's operator account.
func demoInventory(ctx context.Context, w io.Writer, dataDir string, machines int, node testbed.Node) (wiring.DemoInventory, *testbed.BMCFleet, error) {
	fleet := testbed.Fleet(machines)
	bmcs, err := testbed.StartBMCFleet(ctx, machines, node, func(i int, r testbed.BootReport, err error) {
		if err != nil {
			fmt.Fprintf(w, "  %-12s network boot by its BMC failed: %v\n", fleet[i].ID, err)
			return
		}
		fmt.Fprintf(w, "  %-12s %-10s netbooted by its BMC and onboarded: ready in %s\n", fleet[i].ID, r.IP, r.Took.Round(time.Millisecond))
	})
	if err != nil {
		return wiring.DemoInventory{}, nil, err
	}
	inv := wiring.DemoInventory{}
	if inv.Machines, inv.BMCCredentials, err = bmcs.Inventory(dataDir); err != nil {
		bmcs.Close()
		return inv, nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(demoAdminPassword), bcrypt.DefaultCost)
	if err != nil {
		bmcs.Close()
		return inv, nil, err
	}
	inv.Users = []config.User{{Name: demoAdmin, Role: "admin", PasswordHash: string(hash)}}
	return inv, bmcs, nil
}

func printDemoBanner(w io.Writer, u wiring.URLs, dataDir string, machines int, keep bool, firstID string) {
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(u.MQTT, "mqtt://"))
	fate := "removed on exit"
	if keep {
		fate = "kept on exit"
	}
	// The console and the APIs over TLS when it is on; what nodes fetch
	// stays on plain HTTP.
	api, curlTLS, cert := u.HTTP, "", ""
	if u.HTTPS != "" {
		api, curlTLS = u.HTTPS, "--cacert "+filepath.Join(dataDir, "tls", "tls.crt")+" "
		cert = "\n  certificate SHA-256 " + u.Fingerprint + "\n             (self-signed: the browser asks you to accept it; compare the fingerprint)\n"
	}
	fmt.Fprintf(w, `
Slipway demo is running with %d simulated machines (data in %s, %s).

  console    %[4]s/   log in as %[9]s / %[10]s%[13]s
  health     %[12]s/healthz
  readiness  %[12]s/readyz
  metrics    %[12]s/metrics
  machines   %[4]s/api/v1/machines
  onboarding %[12]s/clients
  BMCs       %[4]s/api/v1/bmcs   (one emulated Redfish BMC per machine)
  Drydock    %[4]s/api/v1.0      (a token from POST /api/v1/login in X-Auth-Token; docs/drydock.md)
  NICo trays %[4]s/v2/org/demo/nico/tray   (Bearer token; siteId `+wiring.DemoSiteID+`; docs/nico.md)
  MQTT       %[5]s   %[6]s

Watch every machine's lifecycle on the bus:
  mosquitto_sub -h %[7]s -p %[8]s -t 'NICO/#' -t 'slipway/#' -v

Reinstall a machine through its BMC (one-time PXE boot, power cycle) from
its page in the console, or:
  curl %[14]s-u %[9]s:%[10]s -X POST %[4]s/api/v1/machines/%[11]s/provision

The simulated machines now power on, netboot and onboard, one line each. Press Ctrl-C to stop.

`, machines, dataDir, fate, api, u.MQTT, u.WebSocket, host, port, demoAdmin, demoAdminPassword, firstID, u.HTTP, cert, curlTLS)
}

// bootDemoFleet powers the simulated machines on and prints how each boot went.
func bootDemoFleet(ctx context.Context, w io.Writer, ports wiring.DemoPorts, machines int, interval, stageDelay time.Duration) {
	fleet := testbed.Fleet(machines)
	var ok int
	node := testbed.Node{Onboard: true, StageDelay: stageDelay}
	testbed.BootFleet(ctx, net.IPv4(127, 0, 0, 1), ports.DHCP, ports.TFTP, machines, interval, node, func(i int, r testbed.BootReport, err error) {
		if err != nil {
			fmt.Fprintf(w, "  %-12s boot failed: %v\n", fleet[i].ID, err)
			return
		}
		ok++
		fmt.Fprintf(w, "  %-12s %-10s %s %s (TFTP), iPXE script, kernel %s, initrd %s (HTTP), onboarded: ready in %s\n",
			fleet[i].ID, r.IP, r.LoaderFile, mib(r.LoaderBytes), mib(r.KernelBytes), mib(r.InitrdBytes), r.Took.Round(time.Millisecond))
	})
	if ctx.Err() == nil {
		fmt.Fprintf(w, "\n%d of %d simulated machines netbooted and onboarded. See them at the machines URL above.\n", ok, machines)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
