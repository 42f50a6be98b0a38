package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway/slipway/testbed/bmcemu"
)

// emulateBMCsCommand runs emulated BMCs in a process of their own, so that
// benchmarks measure the poller's CPU apart from the BMCs' and other
// Redfish clients can poll the same ones. Hidden: it is a test tool.
func emulateBMCsCommand(stdout io.Writer) *cobra.Command {
	var count int
	var latency time.Duration
	var user, password string
	var useTLS bool
	var addr, hostMAC string
	cmd := &cobra.Command{
		Use:    "emulate-bmcs",
		Short:  "Run emulated Redfish BMCs on loopback until stdin closes (a test tool)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if addr != "" {
				return serveOneBMC(stdout, addr, useTLS, bmcemu.Config{Username: user, Password: password, HostMACs: []string{hostMAC}})
			}
			farm, err := bmcemu.StartFarm(count, useTLS, func(i int, c *bmcemu.Config) {
				c.Username, c.Password = user, password
				c.Serial = fmt.Sprintf("EMU%06d", i)
				c.HostMACs = []string{fmt.Sprintf("02:e0:00:%02x:%02x:%02x", byte(i>>16), byte(i>>8), byte(i))}
			})
			if err != nil {
				return err
			}
			defer farm.Close()
			w := bufio.NewWriter(stdout)
			for _, b := range farm.BMCs {
				b.SetFaults(bmcemu.Faults{Latency: latency})
				fmt.Fprintln(w, b.URL)
			}
			fmt.Fprintln(w, "ready")
			if err := w.Flush(); err != nil {
				return err
			}
			// Until the parent closes stdin; a line "requests" is answered
			// with the requests the BMCs have been sent so far.
			in := bufio.NewScanner(os.Stdin)
			for in.Scan() {
				if in.Text() == "requests" {
					fmt.Fprintf(stdout, "requests %d\n", farm.Requests())
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&count, "count", 10, "how many BMCs")
	f.DurationVar(&latency, "latency", 0, "added before every answer")
	f.StringVar(&user, "user", "admin", "BMC user")
	f.StringVar(&password, "password", "admin", "BMC password")
	f.BoolVar(&useTLS, "tls", false, "serve HTTPS with self-signed certificates")
	f.StringVar(&addr, "addr", "", "serve one BMC on this address (e.g. 10.88.0.100:443) instead of --count on loopback")
	f.StringVar(&hostMAC, "host-mac", "02:e0:00:00:00:01", "with --addr: the MAC of the host's first NIC")
	return cmd
}

// serveOneBMC serves one emulated BMC on addr until stdin closes.
func serveOneBMC(stdout io.Writer, addr string, useTLS bool, cfg bmcemu.Config) error {
	e, err := bmcemu.New(cfg)
	if err != nil {
		return err
	}
	r, err := bmcemu.Serve(e, addr, useTLS)
	if err != nil {
		e.Close()
		return err
	}
	defer r.Close()
	fmt.Fprintln(stdout, r.URL)
	fmt.Fprintln(stdout, "ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}
