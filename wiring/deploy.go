package wiring

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"

	"github.com/slipway/slipway/appliance/deploy"
	"github.com/slipway/slipway/appliance/design"
	"github.com/slipway/slipway/appliance/domain"
)

// DesignsDir is where uploaded site designs are kept.
func designsDir(dataDir string) string { return dataDir + "/designs" }

// startDeploy opens the design library and registers the site design
// actions with the task engine.
func (a *Appliance) startDeploy(p *parts, serverURL string) error {
	dir := designsDir(a.cfg.DataDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	var err error
	if p.designsRoot, err = os.OpenRoot(dir); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	profiles := make([]string, 0, len(a.cfg.Profiles))
	for name := range a.cfg.Profiles {
		profiles = append(profiles, name)
	}
	sort.Strings(profiles)
	p.designs = &design.Library{Dir: p.designsRoot, Profiles: profiles}
	p.deploy = deploy.New(deploy.Config{DB: p.db, Commit: p.commit, Engine: p.tasks, Designs: p.designs,
		Machines: p.inventory, Records: domain.Fleet{DB: p.db}, BMCs: p.bmcs, SiteChecks: a.siteChecks(p), ReportURL: serverURL + "/api/v1.0/bootactions/",
		Log: a.log})
	return nil
}

// siteChecks are what verify_site looks at: the box's own services.
func (a *Appliance) siteChecks(p *parts) []deploy.Check {
	return []deploy.Check{
		{Name: "store", Run: func(ctx context.Context) error { return p.db.Ping(ctx) }},
		{Name: "boot files", Run: func(context.Context) error {
			var missing []string
			for arch, file := range a.cfg.Netboot.BootFiles {
				if _, err := fs.Stat(p.bootRoot.FS(), file); err != nil {
					missing = append(missing, arch+": "+file)
				}
			}
			if len(missing) > 0 {
				sort.Strings(missing)
				return fmt.Errorf("missing from the TFTP root: %v (make bootfiles, or put them there)", missing)
			}
			return nil
		}},
		{Name: "dhcp", Run: func(context.Context) error {
			if a.cfg.DHCP.Mode != "full" {
				return nil // another server leases addresses; this box answers PXE only
			}
			b := p.leases.Load()
			if b == nil {
				return errors.New("the DHCP server is not serving")
			}
			if b.Active() >= b.PoolSize() {
				return fmt.Errorf("the pool is full: %d of %d addresses leased", b.Active(), b.PoolSize())
			}
			return nil
		}},
	}
}
