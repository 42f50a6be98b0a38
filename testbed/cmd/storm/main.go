// Command storm powers on a site of simulated machines at once against a
// Slipway on a namespace LAN and reports how long each took to be ready
// (package testbed/storm). It runs inside the client namespace, as root
// (a raw socket, and the machines' addresses added to the interface):
//
//	ip netns exec CLIENT storm -server 10.88.0.1 -machines 10000 -out DIR
//
// make bench-storm builds the LAN, starts Slipway and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/slipway/slipway/testbed/storm"
)

func main() {
	var cfg storm.Config
	var out, cpuProfile string
	flag.StringVar(&cfg.Interface, "interface", "eth0", "the LAN interface")
	flag.StringVar(&cfg.Server, "server", "10.88.0.1", "Slipway's address on the LAN")
	flag.IntVar(&cfg.Machines, "machines", 1000, "machines to power on")
	flag.IntVar(&cfg.FirstMAC, "first-mac", 0x100000, "the first machine's MAC index (MACs are 02:53:57:xx:xx:xx)")
	flag.StringVar(&cfg.Pool, "pool", "", "the DHCP server's range, first-last: the storm answers for all of it at once (local routes) instead of adding each leased address to its interface")
	flag.DurationVar(&cfg.Ramp, "ramp", 0, "spread the power-on over this long")
	flag.DurationVar(&cfg.BootThink, "boot-think", 0, "between the initrd and cloud-init (the kernel booting)")
	flag.DurationVar(&cfg.StageThink, "stage-think", 0, "between two onboarding stages")
	flag.Float64Var(&cfg.Loss, "loss", 0, "share of DHCP packets lost each way (0–1)")
	flag.Float64Var(&cfg.Slow, "slow", 0, "share of machines that read their kernel and initrd slowly (0–1)")
	flag.IntVar(&cfg.SlowRate, "slow-rate", 1<<20, "how slowly, in bytes per second")
	flag.IntVar(&cfg.BootRetries, "boot-retries", 10, "network boots started again after a failed loader fetch, as server firmware does (many loop their boot order without end)")
	flag.IntVar(&cfg.TFTPPort, "tftp-port", 69, "Slipway's TFTP port")
	flag.IntVar(&cfg.HTTPPort, "http-port", 80, "Slipway's HTTP port (the event stream)")
	flag.IntVar(&cfg.MQTTPort, "mqtt-port", 1883, "Slipway's MQTT port; 0: no subscriber")
	flag.StringVar(&cfg.APIUser, "api-user", "", "user for the console's event stream; empty: not opened")
	flag.StringVar(&cfg.APIPassword, "api-password", "", "its password")
	flag.StringVar(&cfg.Browser, "browser", "", "a Chromium to watch the console's overview with during the storm (headless, logged in as -api-user); empty: none")
	flag.IntVar(&cfg.HTTPSPort, "https-port", 443, "Slipway's HTTPS port (the console in the browser)")
	flag.IntVar(&cfg.ServerPID, "server-pid", 0, "Slipway's process id, sampled every second")
	flag.DurationVar(&cfg.Deadline, "deadline", 0, "give up on machines not ready by then (default 10m)")
	flag.StringVar(&out, "out", "", "directory for summary.json, machines.csv, series.csv and storm.svg")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write the storm's own CPU profile here (what the simulated machines cost)")
	flag.Parse()
	cfg.Progress = os.Stderr
	if os.Getenv("GOGC") == "" {
		// Ten thousand machines are ten thousand goroutines whose stacks
		// every collection scans: collect less often, so that the storm
		// takes less of the CPU it shares with the server it measures.
		debug.SetGCPercent(400)
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "storm: -cpuprofile:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := storm.Run(ctx, cfg)
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Print(report.Table())
	if out != "" {
		if err := report.Write(out); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
