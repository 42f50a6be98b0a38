package wiring

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/broker/bridge"
)

// startBridge prepares the upstream bridge when bridge.url is set, from
// the bridge's place in the outbox; when it is not, the place a bridge
// once had is forgotten, so that it holds no events back from pruning.
func (a *Appliance) startBridge(ctx context.Context, p *parts, reg prometheus.Registerer) error {
	if !a.cfg.BridgeOn() {
		return p.outbox.Forget(ctx, bridge.ConsumerName)
	}
	cfg, err := a.bridgeConfig()
	if err != nil {
		return err
	}
	from, err := p.outbox.Open(ctx, bridge.ConsumerName)
	if err != nil {
		return err
	}
	if a.cfg.Bridge.Commands.Enabled {
		cfg.Commands = bridge.Commands{Actions: commandActions{p.bmcs, p.inventory}, Role: a.cfg.Bridge.Commands.Role}
	}
	if p.bridge, err = bridge.New(cfg, from, p.broker); err != nil {
		return err
	}
	p.bridge.Register(reg)
	return nil
}

// bridgeConfig is the bridge's configuration with its files read.
func (a *Appliance) bridgeConfig() (bridge.Config, error) {
	b := a.cfg.Bridge
	cfg := bridge.Config{URL: b.URL, ClientID: a.cfg.BridgeClientID(), Username: b.Username, Site: b.Site,
		Prefix: a.cfg.BridgeTopicPrefix(), MaxBacklog: b.MaxBacklog, Version: a.opts.Version, Log: a.log.With("part", "bridge")}
	for _, t := range b.Topics {
		cfg.Trees = append(cfg.Trees, bridge.Tree{Filter: t.Filter, QoS: t.QoSOr(), Retain: retainSetting(t.Retain)})
	}
	if b.PasswordFile != "" {
		pw, err := os.ReadFile(b.PasswordFile)
		if err != nil {
			return cfg, fmt.Errorf("bridge.password_file: %w", err)
		}
		cfg.Password = strings.TrimRight(string(pw), "\r\n")
	}
	if a.cfg.BridgeTLS() {
		tls, err := bridge.TLSConfig(b.CAFile, b.CertFile, b.KeyFile)
		if err != nil {
			return cfg, err
		}
		cfg.TLS = tls
	}
	return cfg, nil
}

func retainSetting(s string) bridge.Retain {
	switch s {
	case config.RetainAlways:
		return bridge.Always
	case config.RetainNever:
		return bridge.Never
	}
	return bridge.AsPublished
}

// bridgeStatus is the bridge's status for the overview and /readyz; nil
// without a bridge.
func (p *parts) bridgeStatus() any {
	if p.bridge == nil {
		return nil
	}
	return p.bridge.Status()
}

// commandActions are what the upstream's commands do: the BMC manager's
// power and provisioning, the inventory's heartbeat reset.
type commandActions struct {
	*bmc.Manager
	*domain.Inventory
}
