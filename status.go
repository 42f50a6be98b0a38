package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/broker/bridge"
)

func statusCommand(stdout io.Writer) *cobra.Command {
	var path, url string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Say whether a running Slipway is ready, and how its upstream bridge is doing",
		Long: `Ask a running Slipway's /readyz (no login needed) and print, in words, whether
it is ready and, if it has one, the state of its upstream bridge: connected or
not and since when, the events waiting and for how long, the last error.
Exits 1 if Slipway is not ready or cannot be reached. By default it asks the
address the configuration file names; --url asks another.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				cfg, err := config.Load(path)
				if err != nil {
					return fmt.Errorf("%s: %w (or give --url)", path, err)
				}
				url = "http://" + net.JoinHostPort(cfg.LANIP().String(), strconv.Itoa(cfg.HTTP.Port))
			}
			return printStatus(cmd.Context(), stdout, url, time.Now())
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "/etc/slipway/slipway.yaml", "configuration file of the Slipway to ask")
	cmd.Flags().StringVar(&url, "url", "", "the Slipway to ask, e.g. http://10.88.0.1")
	return cmd
}

// readyz is /readyz's answer.
type readyz struct {
	Status string         `json:"status"`
	Error  string         `json:"error"`
	Bridge *bridge.Status `json:"bridge"`
}

func printStatus(ctx context.Context, w io.Writer, url string, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("status: Slipway does not answer at %s: %w", url, err)
	}
	defer resp.Body.Close()
	var r readyz
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status == "" {
		return fmt.Errorf("status: %s/readyz answered %s, not Slipway's readiness", url, resp.Status)
	}
	fmt.Fprintf(w, "Slipway at %s: %s\n", url, r.Status)
	if b := r.Bridge; b != nil {
		printBridge(w, *b, now)
	} else {
		fmt.Fprintln(w, "uplink: none (bridge.url is not set)")
	}
	if r.Status != "ready" {
		return errors.New("not ready: " + r.Error)
	}
	return nil
}

func printBridge(w io.Writer, b bridge.Status, now time.Time) {
	state := "up"
	if !b.Connected {
		state = "DOWN"
	}
	fmt.Fprintf(w, "uplink to %s (site %s): %s since %s (%s ago)\n", b.URL, b.Site, state,
		b.Since.Local().Format(time.DateTime), now.Sub(b.Since).Round(time.Second))
	waiting := "nothing waiting"
	if b.Backlog > 0 {
		waiting = fmt.Sprintf("%d events waiting, the oldest for %s", b.Backlog, time.Duration(b.LagSeconds*float64(time.Second)).Round(time.Second))
	}
	fmt.Fprintf(w, "  %s; %d sent since start, %d dropped past bridge.max_backlog\n", waiting, b.Sent, b.Dropped)
	if b.LastError != "" {
		fmt.Fprintf(w, "  last error (%s): %s\n", b.LastErrorAt.Local().Format(time.DateTime), b.LastError)
	}
}
