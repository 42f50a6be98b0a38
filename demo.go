package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/slipway/slipway/appliance"
	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/testbed"
)

func demoCommand(stdout, stderr io.Writer) *cobra.Command {
	ports := appliance.DefaultDemoPorts()
	var machines int
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the real appliance on 127.0.0.1 with a simulated fleet (no root needed)",
		Long: `Run Slipway on 127.0.0.1 with unprivileged ports, a temporary data directory
and a simulated fleet, and print where to look. DHCP is off (it needs root and
a LAN). Ctrl-C stops it and removes the data directory unless --keep-data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dataDir, err := os.MkdirTemp("", "slipway-demo-")
			if err != nil {
				return fmt.Errorf("demo: temporary data directory: %w", err)
			}
			if !keep {
				defer os.RemoveAll(dataDir)
			}
			cfg, err := appliance.DemoConfig(dataDir, ports, testbed.Fleet(machines))
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			log := newLogger(stderr, config.Log{Level: "info", Format: "text"})
			return appliance.New(cfg, appliance.Options{Version: version, Logger: log, OnReady: func(u appliance.URLs) {
				printDemoBanner(stdout, u, dataDir, machines, keep)
			}}).Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.IntVar(&machines, "machines", 16, "simulated machines in the inventory")
	f.BoolVar(&keep, "keep-data", false, "keep the data directory on exit")
	f.IntVar(&ports.HTTP, "http-port", ports.HTTP, "HTTP port")
	f.IntVar(&ports.MQTT, "mqtt-port", ports.MQTT, "MQTT port")
	f.IntVar(&ports.WebSocket, "mqtt-ws-port", ports.WebSocket, "MQTT over WebSocket port (0: off)")
	f.IntVar(&ports.TFTP, "tftp-port", ports.TFTP, "TFTP port")
	return cmd
}

func printDemoBanner(w io.Writer, u appliance.URLs, dataDir string, machines int, keep bool) {
	fate := "removed on exit"
	if keep {
		fate = "kept on exit"
	}
	fmt.Fprintf(w, `
Slipway demo is running with %d simulated machines (data in %s, %s).

  health     %[4]s/healthz
  readiness  %[4]s/readyz
  metrics    %[4]s/metrics
  machines   %[4]s/api/v1/machines
  MQTT       %s   %s

Press Ctrl-C to stop.
`, machines, dataDir, fate, u.HTTP, u.MQTT, u.WebSocket)
}
