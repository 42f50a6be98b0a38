// Command slipway is an offline provisioning appliance in one binary: DHCP,
// TFTP and HTTP netboot, cloud-init by MAC, onboarding heartbeats, an MQTT
// event bus, Redfish BMC control and a web console, on one isolated LAN.
//
//	slipway serve --config /etc/slipway/slipway.yaml
//	slipway demo
//	slipway check-config slipway.yaml
//	slipway version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/wiring"
)

// Set at build time by the Makefile (-ldflags -X).
var (
	version = "dev"
	commit  = "unknown"
	built   = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile := startCPUProfile(os.Getenv("SLIPWAY_CPUPROFILE"))
	writeHeapProfileLater(os.Getenv("SLIPWAY_MEMPROFILE"), os.Getenv("SLIPWAY_MEMPROFILE_AFTER"))
	err := newRootCommand(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stopProfile()
	if err != nil {
		reportError(os.Stderr, err)
		os.Exit(1)
	}
}

// startCPUProfile writes a CPU profile to path until the returned function
// is called: SLIPWAY_CPUPROFILE=/tmp/cpu.out slipway serve ..., for
// developers chasing a benchmark (go tool pprof).
func startCPUProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "slipway: SLIPWAY_CPUPROFILE:", err)
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// writeHeapProfileLater writes the live heap to path after a while (15 s,
// once start-up is over, or SLIPWAY_MEMPROFILE_AFTER, a Go duration):
// SLIPWAY_MEMPROFILE=/tmp/heap.out slipway serve ..., for developers asking
// where the resident memory goes (go tool pprof).
func writeHeapProfileLater(path, after string) {
	if path == "" {
		return
	}
	wait, err := time.ParseDuration(after)
	if err != nil {
		wait = 15 * time.Second
	}
	time.AfterFunc(wait, func() {
		f, err := os.Create(path)
		if err == nil {
			runtime.GC()
			err = errors.Join(pprof.WriteHeapProfile(f), f.Close())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "slipway: SLIPWAY_MEMPROFILE:", err)
		}
	})
}

// reportError prints one line per problem, each prefixed so that it stands
// out in a terminal or a journal.
func reportError(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintln(w, "slipway: "+line)
	}
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "slipway",
		Short: "Offline provisioning appliance: netboot, cloud-init, lifecycle events and BMC control on one LAN",
		Long: `Slipway takes bare servers on an isolated provisioning LAN from power-on to an
onboarded OS: DHCP, TFTP and HTTP netboot, cloud-init by MAC, onboarding
heartbeats, an MQTT bus of lifecycle events, and Redfish BMC control.

Try it without root or a spare LAN:   slipway demo
Check a configuration file:           slipway check-config slipway.yaml
Run on the provisioning LAN:          slipway serve --config /etc/slipway/slipway.yaml
Ask a running one how it is:          slipway status --config /etc/slipway/slipway.yaml

The configuration reference is docs/config.md; slipway.example.yaml is a
commented starting point.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serveCommand(stderr), demoCommand(stdout, stderr), checkConfigCommand(stdout), versionCommand(stdout), hashPasswordCommand(), emulateBMCsCommand(stdout), statusCommand(stdout))
	return root
}

func serveCommand(stderr io.Writer) *cobra.Command {
	var path, readyFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the appliance on the LAN named in the configuration",
		Long: `Run every part of Slipway on the provisioning LAN: DHCP on the LAN interface,
and TFTP, HTTP and MQTT on the LAN address only. Start-up fails with a message
naming the field to fix if the address is not on the interface or a port is
taken. Stops cleanly on SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err == nil {
				err = cfg.CheckFiles()
			}
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			log := newLogger(stderr, cfg.Log)
			opts := wiring.Options{Version: version, Logger: log}
			if readyFile != "" {
				var oneTime string // a first start's admin password, for the box's own screen
				opts.OnFirstAdmin = func(password string) { oneTime = password }
				opts.OnReady = func(u wiring.URLs) {
					if err := writeReadyFile(readyFile, cfg, u, oneTime); err != nil {
						log.Warn("ready file not written", "error", err)
					}
				}
				defer os.Remove(readyFile)
			}
			return wiring.New(cfg, opts).Run(cmd.Context())
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "/etc/slipway/slipway.yaml", "configuration file")
	cmd.Flags().StringVar(&readyFile, "ready-file", "", "once serving, write where (interface, address, URLs, certificate fingerprint, a first start's admin password) as key=value lines to this file (0600); removed on stop")
	return cmd
}

// writeReadyFile tells a supervisor (the appliance image's screen) where
// Slipway serves, as lines a shell reads; written whole or not at all.
// oneTime is a first start's admin password, which only this start knows.
func writeReadyFile(path string, cfg *config.Config, u wiring.URLs, oneTime string) error {
	var b strings.Builder
	for _, kv := range [][2]string{{"version", version}, {"interface", cfg.LAN.Interface}, {"address", cfg.LANPrefix().String()},
		{"console", u.HTTPS}, {"fingerprint", u.Fingerprint}, {"http", u.HTTP}, {"mqtt", u.MQTT}, {"usm", u.USM}, {"admin_password", oneTime}} {
		fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func checkConfigCommand(stdout io.Writer) *cobra.Command {
	var value string
	cmd := &cobra.Command{
		Use:   "check-config FILE",
		Short: "Validate a configuration file and list every problem in it",
		Long: `Read FILE over the built-in defaults and check every field. Each problem is
printed as "path (line N): what is wrong; how to fix it". Exits 0 when the
file is valid. The files it names that must be on this machine (BMC password
files, the BMC CA bundle) are checked too: run it where Slipway runs. Whether
lan.address is on lan.interface is checked by serve, on the appliance itself.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0])
			if err == nil {
				err = cfg.CheckFiles()
			}
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if value != "" {
				v, err := cfg.Value(value)
				if err != nil {
					return err
				}
				fmt.Fprintln(stdout, v)
				return nil
			}
			fmt.Fprintf(stdout, "%s: valid (LAN %s on %s, DHCP %s, %d machines, %d profiles)\n",
				args[0], cfg.LANPrefix(), cfg.LAN.Interface, cfg.DHCP.Mode, len(cfg.Machines), len(cfg.Profiles))
			return nil
		},
	}
	cmd.Flags().StringVar(&value, "value", "", "print only this field's effective value (e.g. image.state_device) once the file is valid: for scripts")
	return cmd
}

func versionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(stdout, "slipway %s (commit %s, built %s)\n", version, commit, built)
		},
	}
}

func newLogger(w io.Writer, cfg config.Log) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
