package wiring

import (
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/broker"
)

// startBMCs builds the BMC manager and registers the BMCs the config
// inventory names; polling starts with the serve loops.
func (a *Appliance) startBMCs(ctx context.Context, p *parts, reg prometheus.Registerer, serverURL string) error {
	sealer, err := bmc.OpenSealer(a.cfg.SecretKeyFile())
	if err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	disc, err := a.bmcDiscovery(p)
	if err != nil {
		return err
	}
	b := a.cfg.BMC
	roots, err := bmcRootCAs(b.CAFile)
	if err != nil {
		return err
	}
	p.bmcs, err = bmc.NewManager(ctx, bmc.Config{DB: p.db, Commit: p.commit, Sealer: sealer, Machines: p.inventory, RootCAs: roots,
		Announce: broker.Events{}, Log: a.log.With("part", "bmcs"),
		Poll:      bmc.PollConfig{Interval: b.PollInterval, Timeout: b.RequestTimeout, Workers: b.MaxPollsInFlight, MaxBackoff: b.MaxBackoff, InventoryInterval: b.InventoryInterval},
		Discovery: disc, HTTPBootURI: a.httpBootURI(serverURL)})
	if err != nil {
		return err
	}
	registerBMCMetrics(reg, p.bmcs)
	inConfig := map[string]bool{}
	for i, m := range a.cfg.Machines {
		if m.BMC == nil {
			continue
		}
		inConfig[bmc.IDForSystem(m.BMC.Endpoint, m.BMC.System)] = true
		creds, err := a.bmcCredentials(m.BMC.Credentials)
		if err != nil {
			return fmt.Errorf("machines[%d].bmc: %w", i, err)
		}
		_, err = p.bmcs.Register(ctx, bmc.Registration{Endpoint: m.BMC.Endpoint, Username: creds.Username, Password: creds.Password,
			Insecure: m.BMC.InsecureSkipVerify, MachineID: m.ID, Source: domain.SourceConfig, System: m.BMC.System})
		if err != nil {
			return fmt.Errorf("machines[%d].bmc: %w", i, err)
		}
	}
	// A BMC the config named and names no more is forgotten (its machine stays).
	for _, s := range p.bmcs.Statuses() {
		if s.Source == domain.SourceConfig && !inConfig[s.ID] {
			if err := p.bmcs.Remove(ctx, s.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *Appliance) bmcDiscovery(p *parts) (bmc.DiscoveryConfig, error) {
	d := a.cfg.BMC.Discovery
	out := bmc.DiscoveryConfig{Endpoints: d.Endpoints, Insecure: d.InsecureSkipVerify,
		Forget: func(ctx context.Context, mac domain.MAC, cause string) {
			if _, err := p.inventory.ForgetNIC(ctx, mac, cause); err != nil {
				a.log.Warn("BMC discovery: cannot forget the machine its NIC made", "mac", mac, "error", err)
			}
		}}
	for i, name := range d.Credentials {
		c, err := a.bmcCredentials(name)
		if err != nil {
			return out, fmt.Errorf("bmc.discovery.credentials[%d]: %w", i, err)
		}
		out.Credentials = append(out.Credentials, c)
	}
	if len(out.Credentials) == 0 {
		a.log.Info("BMC discovery is off: name credentials to try under bmc.discovery.credentials to turn it on")
	}
	return out, nil
}

// bmcCredentials reads a named credential's password file.
func (a *Appliance) bmcCredentials(name string) (bmc.Credentials, error) {
	c := a.cfg.BMCCredentials[name]
	pw, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return bmc.Credentials{}, fmt.Errorf("bmc_credentials.%s.password_file: %w", name, err)
	}
	return bmc.Credentials{Name: name, Username: c.Username, Password: strings.TrimRight(string(pw), "\r\n")}, nil
}

// registerBMCMetrics exposes the poller's counts and the fleet's
// reachability.
func registerBMCMetrics(reg prometheus.Registerer, m *bmc.Manager) {
	counter := func(name, help string, v func(bmc.PollStats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v(m.Stats())) })
	}
	reg.MustRegister(
		counter("slipway_bmc_polls_total", "Redfish polls of BMCs done.", func(s bmc.PollStats) int64 { return s.Polls }),
		counter("slipway_bmc_poll_failures_total", "Redfish polls that failed.", func(s bmc.PollStats) int64 { return s.Failed }),
		counter("slipway_bmc_poll_changes_total", "Polls that found something new (and wrote it).", func(s bmc.PollStats) int64 { return s.Written }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "slipway_bmcs_unusable", Help: "BMCs whose last poll failed."}, func() float64 {
			n := 0
			for _, s := range m.Statuses() {
				if s.LastError != "" {
					n++
				}
			}
			return float64(n)
		}),
	)
}

// httpBootURI is the loader a machine provisioned by UEFI HTTP boot
// fetches: the x86-64 UEFI HTTP boot file (else the UEFI one) under /boot/.
func (a *Appliance) httpBootURI(serverURL string) string {
	files := a.cfg.Netboot.BootFiles
	file := cmp.Or(files["uefi-x64-http"], files["uefi-x64"])
	if file == "" {
		return ""
	}
	return serverURL + "/boot/" + file
}

// bmcRootCAs are the system's CAs and those of bmc.ca_file; nil (the
// system's alone) without one.
func bmcRootCAs(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pemData, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("bmc.ca_file: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("bmc.ca_file: %s holds no PEM certificate", file)
	}
	return roots, nil
}
