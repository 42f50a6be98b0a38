package wiring

import (
	"os"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/slipway/slipway/appliance/config"
)

// autoMemoryShare is the share of the box's memory (or its cgroup's, when
// it has a limit) that memory_limit: auto gives the Go runtime. The rest
// is for what the runtime does not count: SQLite's page caches, the
// kernel's cache of the boot files served, the system.
const autoMemoryShare = 0.75

// limitMemory gives the Go runtime memory_limit as a soft limit. Without
// one the heap may grow to twice what is live before a collection: a
// storm of 10,000 machines held 885 MiB at its peak with about 250 MiB
// live. Near the limit the runtime collects sooner instead of growing,
// which on a small box is the difference between a slower storm and the
// kernel killing Slipway. GOMEMLIMIT in the environment wins.
func (a *Appliance) limitMemory() {
	if env := os.Getenv("GOMEMLIMIT"); env != "" {
		// Said here, not by the library: the log must not credit
		// memory_limit with a limit it did not set.
		a.log.Info("memory limit from GOMEMLIMIT; memory_limit is not used", "GOMEMLIMIT", env, "memory_limit", a.cfg.MemoryLimit)
		return
	}
	opts := memoryLimitOptions(a.cfg.Memory())
	if opts == nil {
		a.log.Info("no memory limit (memory_limit: off)")
		return
	}
	limit, err := memlimit.Set(opts...)
	if err != nil {
		a.log.Warn("memory limit not set; the runtime's heap grows unbounded", "memory_limit", a.cfg.MemoryLimit, "err", err)
		return
	}
	a.log.Info("memory limit", "limit_mib", limit>>20, "memory_limit", a.cfg.MemoryLimit)
}

// memoryLimitOptions says where the limit comes from: nil for none.
func memoryLimitOptions(m config.MemoryLimit) []memlimit.Option {
	switch {
	case m.Auto:
		return []memlimit.Option{memlimit.WithRatio(autoMemoryShare),
			memlimit.WithProvider(memlimit.ApplyFallback(memlimit.FromCgroup, memlimit.FromSystem))}
	case m.Bytes > 0:
		return []memlimit.Option{memlimit.WithRatio(1), memlimit.WithProvider(memlimit.Limit(uint64(m.Bytes)))}
	default:
		return nil
	}
}
