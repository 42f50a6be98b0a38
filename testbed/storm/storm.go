package storm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipway/slipway/testbed"
)

// Config is one storm.
type Config struct {
	Interface string // the LAN interface of the namespace the storm runs in
	Server    string // Slipway's address on the LAN (MQTT, the event stream)
	Machines  int
	FirstMAC  int // machine i has MAC testbed.FleetMAC(FirstMAC+i)
	// Pool is the DHCP server's range, "first-last": the storm answers for
	// all of it at once rather than adding each leased address to its
	// interface (see addresses). Empty: each is added.
	Pool string
	// Ramp spreads the machines' power-on evenly over this long (a site's
	// PDUs, or BMCs powered on by a script); 0 powers all on at once.
	Ramp       time.Duration
	BootThink  time.Duration // between the initrd and cloud-init: the kernel booting
	StageThink time.Duration // between two onboarding stages: the installer working
	Loss       float64       // share of DHCP packets lost, each way (0–1)
	Slow       float64       // share of machines that read their kernel and initrd slowly
	SlowRate   int           // how slowly, in bytes per second (default 1 MiB/s)
	// BootRetries is how many times a machine whose loader could not be
	// fetched starts its network boot again, as server firmware does.
	BootRetries int
	TFTPPort    int // default 69
	HTTPPort    int // for the event stream (default 80)
	MQTTPort    int // 0: no MQTT subscriber
	// APIUser and APIPassword open the console's event stream; empty: none.
	APIUser, APIPassword string
	// Browser is a Chromium that watches the console's overview (logged in
	// as APIUser over HTTPS) during the storm; empty: none.
	Browser   string
	HTTPSPort int           // for the console in the browser (default 443)
	ServerPID int           // Slipway's process, sampled every second; 0: not sampled
	Deadline  time.Duration // the storm gives up on machines not ready by then (default 10 min)
	Progress  io.Writer     // a line every 5 s; nil: none
}

func (c Config) withDefaults() (Config, error) {
	c.SlowRate = cmp.Or(c.SlowRate, 1<<20)
	c.TFTPPort = cmp.Or(c.TFTPPort, 69)
	c.HTTPPort = cmp.Or(c.HTTPPort, 80)
	c.HTTPSPort = cmp.Or(c.HTTPSPort, 443)
	c.Deadline = cmp.Or(c.Deadline, 10*time.Minute)
	switch {
	case c.Interface == "":
		return c, errors.New("storm: no LAN interface")
	case net.ParseIP(c.Server) == nil:
		return c, fmt.Errorf("storm: server %q is not an IP address", c.Server)
	case c.Machines <= 0:
		return c, errors.New("storm: no machines")
	case c.Browser != "" && c.APIUser == "":
		return c, errors.New("storm: the browser logs in to the console as the API user: set one")
	case c.Loss < 0 || c.Loss >= 1 || c.Slow < 0 || c.Slow > 1:
		return c, errors.New("storm: loss must be in [0, 1) and slow in [0, 1]")
	}
	return c, nil
}

// progress counts machines through the storm, for the series and the
// progress lines.
type progress struct {
	poweredOn, failed atomic.Int64
	done              [numStages]atomic.Int64
	mqtt, stream      atomic.Int64 // messages the subscriber and the event stream got
	overflows         atomic.Int64 // times the event stream said it had dropped events
}

type storm struct {
	cfg      Config
	began    time.Time
	link     *dhcpLink
	addrs    *addresses
	progress progress
	console  *console // nil: no browser
	// buffers are the machines' read buffers for kernels and initrds,
	// shared: a machine needs one only while it downloads.
	buffers sync.Pool
}

// Run powers on cfg.Machines machines and waits for them to be ready (or
// to fail, or for the deadline), then for the bus to go quiet.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &storm{cfg: cfg, buffers: sync.Pool{New: func() any { return new([readBufferSize]byte) }}}
	if s.link, err = openDHCPLink(cfg.Interface, cfg.Loss); err != nil {
		return nil, err
	}
	defer s.link.close()
	if s.addrs, err = openAddresses(cfg.Interface, cfg.Pool); err != nil {
		return nil, err
	}
	defer s.addrs.close()
	watchCtx, stopWatching := context.WithCancel(context.Background())
	defer stopWatching()
	if err := s.watch(watchCtx); err != nil {
		return nil, err
	}

	if cfg.Browser != "" {
		if s.console, err = s.openConsole(); err != nil {
			return nil, err
		}
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	s.began = time.Now()
	if s.console != nil {
		go s.console.watch(watchCtx, s.began)
	}
	sampling := s.sample(watchCtx)
	outcomes := s.powerOn(ctx)
	s.waitQuiet(10 * time.Second)
	stopWatching()
	r := s.report(outcomes, <-sampling)
	if s.console != nil {
		if r.Console, err = s.console.finish(s.began, r.Wall, int64(r.Ready), r.series); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// powerOn starts every machine on the ramp and waits for them all.
func (s *storm) powerOn(ctx context.Context) []outcome {
	outcomes := make([]outcome, s.cfg.Machines)
	var wg sync.WaitGroup
	for i := range s.cfg.Machines {
		mac, _ := net.ParseMAC(testbed.FleetMAC(s.cfg.FirstMAC + i))
		m := machine{mac: mac, slow: rand.Float64() < s.cfg.Slow}
		at := s.began.Add(s.cfg.Ramp * time.Duration(i) / time.Duration(s.cfg.Machines))
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-ctx.Done():
				outcomes[i] = outcome{MAC: mac.String(), Err: "never powered on: " + ctx.Err().Error()}
				return
			case <-time.After(time.Until(at)):
			}
			s.progress.poweredOn.Add(1)
			outcomes[i] = s.boot(ctx, m)
		}()
	}
	wg.Wait()
	return outcomes
}

// waitQuiet waits until the bus and the event stream have had nothing
// new for a second, or for at most max: what was committed late in the
// storm is still on its way.
func (s *storm) waitQuiet(max time.Duration) {
	deadline := time.Now().Add(max)
	last := int64(-1)
	for time.Now().Before(deadline) {
		now := s.progress.mqtt.Load() + s.progress.stream.Load()
		if now == last {
			return
		}
		last = now
		time.Sleep(time.Second)
	}
}
