package wiring

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/release"
	"github.com/slipway/slipway/appliance/swdeploy"
	"github.com/slipway/slipway/broker"
	"github.com/slipway/slipway/netboot/bootcfg"
	"github.com/slipway/slipway/web"
	"github.com/slipway/slipway/web/usm"
)

// startReleases opens the OS release library, and, when usm.port is set,
// binds StarlingX USM's API on it.
func (a *Appliance) startReleases(p *parts, lanIP netip.Addr) error {
	keys, err := release.LoadKeyring(a.cfg.USM.TrustedKeys)
	if err != nil {
		return fmt.Errorf("usm.trusted_keys: %w", err)
	}
	p.releases, err = release.NewLibrary(release.Config{Dir: a.cfg.ReleasesDir(), Staging: a.cfg.ReleaseStagingDir(),
		DB: p.db, Commit: p.commit, Keys: keys, MaxSize: a.cfg.USM.MaxUploadMiB << 20, Log: a.log.With("part", "releases")})
	if err != nil {
		return err
	}
	p.swdeploy = swdeploy.New(swdeploy.Config{DB: p.db, Commit: p.commit, Announce: broker.Events{},
		Tasks: p.tasks, Releases: p.releases,
		Fleet: domain.Fleet{DB: p.db}, Machines: p.inventory, Provision: p.bmcs, DataDir: a.cfg.DataDir, Log: a.log.With("part", "swdeploy")})
	if a.cfg.USM.Port == 0 {
		return nil
	}
	cfg := web.Config{Addr: lanIP, Port: a.cfg.USM.Port, PortField: "usm.port", Logger: a.log}
	if a.cfg.USM.TLS {
		cfg.TLS = serverTLS(p.cert) // on usm.port itself
	}
	p.usm, err = web.New(cfg,
		usm.New(usm.Services{Auth: p.auth, Releases: p.releases, Deploys: p.swdeploy, Log: a.log.With("part", "usm")})...)
	return err
}

// releaseProfiles are the OS releases' boot profiles ("release:<id>"), as
// netboot renders them: the files under the assets' releases/<id>/.
func releaseProfiles(lib *release.Library) bootcfg.MoreProfiles {
	return func(ctx context.Context, name string) (bootcfg.Profile, bool) {
		id, ok := strings.CutPrefix(name, domain.ReleaseProfile(""))
		if !ok {
			return bootcfg.Profile{}, false
		}
		r, err := lib.Release(ctx, id)
		if err != nil {
			return bootcfg.Profile{}, false
		}
		dir := "releases/" + id + "/"
		return bootcfg.Profile{Name: name, Kernel: dir + r.Boot.Kernel, Initrd: dir + r.Boot.Initrd, Cmdline: r.Boot.Cmdline}, true
	}
}

// releaseViews are the releases and the deploy, as the native API reads
// them.
type releaseViews struct {
	*release.Library
	*swdeploy.Service
}
