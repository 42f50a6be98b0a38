package bmc

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/store"
)

// Machines is what the BMC manager needs of the machine inventory.
type Machines interface {
	Owner(mac domain.MAC) (string, bool)
	Adopt(ctx context.Context, macs []domain.MAC, cause string) (string, error)
	GiveMACs(ctx context.Context, id string, macs []domain.MAC, cause string) (int, error)
	Check(id string, ev domain.Event) error
	Apply(ctx context.Context, id string, ev domain.Event) (domain.State, error)
	State(id string) (domain.State, bool)
}

// Announcer turns a BMC's status into its event-bus message (the broker
// package provides it).
type Announcer interface {
	BMCMessage(s Status) outbox.Message
	// BMCGoneMessage clears what the bus retains of a removed BMC.
	BMCGoneMessage(bmcID string) outbox.Message
}

// Config is what a Manager works with.
type Config struct {
	DB        *store.Store
	Commit    *store.Committer
	Sealer    *Sealer
	Machines  Machines
	Announce  Announcer // nil: no bus messages
	Log       *slog.Logger
	Poll      PollConfig
	Discovery DiscoveryConfig
	// RootCAs, if set, are the CAs BMC certificates are verified against
	// (bmc.ca_file) instead of the system's.
	RootCAs *x509.CertPool
	// HTTPBootURI is where a machine provisioned by UEFI HTTP boot fetches
	// its loader (Slipway's own HTTP); empty leaves it to DHCP.
	HTTPBootURI string
}

// PollConfig paces the poller.
type PollConfig struct {
	Interval   time.Duration // between polls of one BMC (default 60 s), ±10 % jitter
	Timeout    time.Duration // per Redfish request (default 10 s)
	Workers    int           // polls in flight at once (default 32)
	MaxBackoff time.Duration // longest wait for an unreachable BMC (default 10 min)
	// InventoryInterval is how often the parts that rarely change (host
	// NICs, the BMC's firmware version, the firmware inventory: most of a
	// poll's requests) are read again; the system itself (power, health,
	// BIOS version) is read at every poll. Default 10 min. They are read
	// by the poll after any action on the BMC or a new registration, after
	// a failed poll, and when the system's model, serial or BIOS version
	// changes.
	InventoryInterval time.Duration
}

func (p PollConfig) withDefaults() PollConfig {
	if p.Interval <= 0 {
		p.Interval = time.Minute
	}
	if p.Timeout <= 0 {
		p.Timeout = 10 * time.Second
	}
	if p.Workers <= 0 {
		p.Workers = 32
	}
	if p.InventoryInterval <= 0 {
		p.InventoryInterval = 10 * time.Minute
	}
	if p.MaxBackoff < p.Interval {
		p.MaxBackoff = max(10*time.Minute, p.Interval)
	}
	return p
}

// pollDeadline bounds a whole poll, which is a handful of requests: a BMC
// that answers each of them in time but never finishes (a collection whose
// next page links back to itself, a trickle) would otherwise hold its poll,
// and its connection, for ever.
func (p PollConfig) pollDeadline() time.Duration { return 6 * p.Timeout }

// errPollOverran ends a poll that outlived its deadline.
var errPollOverran = errors.New("the poll did not finish in time: the BMC answers, but too slowly or without end (a collection whose next page never ends?)")

// Registration is how to reach a BMC.
type Registration struct {
	Endpoint  string // https://10.88.1.10
	Username  string
	Password  string
	Insecure  bool   // do not verify its TLS certificate
	MachineID string // explicit link; empty: linked by host MACs
	Source    string // config | discovered | api
	// System names the computer system managed, on a BMC that manages
	// several: its Id or URI. Empty: the BMC's first; the others are then
	// registered on their own as the first poll finds them.
	System string
}

// Manager is the registry and poller of BMCs.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	clients httpClients
	slots   chan struct{} // one per poll in flight
	// discovery is nil when no credentials are configured for it.
	discovery *discoverer

	stats pollStats

	mu      sync.Mutex
	targets map[string]*target
	run     context.Context // set while Run runs: new BMCs start polling at once
	loops   sync.WaitGroup
}

// NewManager loads the registered BMCs; Run polls them.
func NewManager(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Poll = cfg.Poll.withDefaults()
	m := &Manager{
		cfg: cfg, log: cfg.Log, clients: newHTTPClients(cfg.Poll.Timeout, 2, cfg.RootCAs),
		slots: make(chan struct{}, cfg.Poll.Workers), targets: map[string]*target{},
	}
	if len(cfg.Discovery.Credentials) > 0 {
		m.discovery = newDiscoverer(cfg.Discovery)
	}
	stored, err := cfg.DB.BMCs(ctx)
	if err != nil {
		return nil, fmt.Errorf("load BMCs: %w", err)
	}
	for _, b := range stored {
		m.targets[b.ID] = newTarget(b, m.log)
	}
	return m, nil
}

// Register adds a BMC or changes how to reach it, and polls it soon.
func (m *Manager) Register(ctx context.Context, r Registration) (Status, error) {
	if err := checkEndpoint(r.Endpoint); err != nil {
		return Status{}, err
	}
	if r.Username == "" {
		return Status{}, errors.New("a BMC needs a username")
	}
	id := IDForSystem(r.Endpoint, r.System)
	if t, err := m.target(id); err == nil {
		if t.registeredAs(ctx, r, m.cfg.Sealer) {
			return t.snapshot(), nil // the config names it at every start: nothing to write
		}
		if cur := t.snapshot(); cur.Endpoint != r.Endpoint && r.MachineID != "" && cur.MachineID != "" && cur.MachineID != r.MachineID {
			return Status{}, fmt.Errorf("%s is the BMC %s (%s) of machine %s, not another machine's: the same host and port, whatever the scheme (if it manages several systems, name one): %w",
				r.Endpoint, id, cur.Endpoint, cur.MachineID, ErrSameBMC)
		}
	}
	b := store.BMC{ID: id, Endpoint: r.Endpoint, Username: r.Username, Secret: m.cfg.Sealer.Seal(r.Password, id),
		Insecure: r.Insecure, MachineID: r.MachineID, Source: r.Source, System: r.System}
	if r.MachineID != "" {
		b.LinkedBy = r.Source
	}
	if err := m.cfg.Commit.Do(ctx, func(tx *store.Tx) error { return tx.PutBMC(b) }); err != nil {
		return Status{}, fmt.Errorf("register BMC %s: %w", r.Endpoint, err)
	}
	stored, err := m.cfg.DB.BMC(ctx, id)
	if err != nil {
		return Status{}, err
	}
	m.mu.Lock()
	t, ok := m.targets[id]
	if !ok {
		t = newTarget(stored, m.log)
		m.targets[id] = t
		m.startLocked(t)
	}
	m.mu.Unlock()
	if ok {
		t.reregister(stored)
	}
	m.log.Info("BMC registered", "bmc_id", id, "endpoint", r.Endpoint, "user", r.Username, "source", r.Source)
	return t.snapshot(), nil
}

// Remove forgets a BMC: its polling stops, its session is logged out, its
// record and retained bus message are deleted. Its machine stays.
func (m *Manager) Remove(ctx context.Context, id string) error {
	m.mu.Lock()
	t, ok := m.targets[id]
	delete(m.targets, id)
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("BMC %s: %w", id, ErrUnknownBMC)
	}
	close(t.gone)
	t.logout()
	err := m.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteBMC(id); err != nil {
			return err
		}
		if m.cfg.Announce == nil {
			return nil
		}
		outbox.Enqueue(tx, m.cfg.Announce.BMCGoneMessage(id))
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove BMC %s: %w", id, err)
	}
	m.log.Info("BMC removed", "bmc_id", id)
	return nil
}

func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("%q is not a BMC endpoint: write it as https://10.88.1.10", endpoint)
	}
	return nil
}

// Statuses lists every BMC, by id.
func (m *Manager) Statuses() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.targets))
	for _, t := range m.targets {
		out = append(out, t.snapshot())
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// ErrUnknownBMC is returned for a BMC id nobody registered.
var ErrUnknownBMC = errors.New("no such BMC")

// Status is one BMC.
func (m *Manager) Status(id string) (Status, error) {
	t, err := m.target(id)
	if err != nil {
		return Status{}, err
	}
	return t.snapshot(), nil
}

func (m *Manager) target(id string) (*target, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.targets[id]
	if !ok {
		return nil, fmt.Errorf("BMC %s: %w", id, ErrUnknownBMC)
	}
	return t, nil
}

// ForMachine is the BMC linked to a machine.
func (m *Manager) ForMachine(machineID string) (Status, error) {
	var linked []Status
	for _, s := range m.Statuses() {
		if s.MachineID == machineID {
			linked = append(linked, s)
		}
	}
	switch len(linked) {
	case 0:
		return Status{}, fmt.Errorf("machine %s has no BMC linked: %w", machineID, ErrUnknownBMC)
	case 1:
		return linked[0], nil
	}
	ids := make([]string, len(linked))
	for i, s := range linked {
		ids[i] = s.ID
	}
	return Status{}, fmt.Errorf("machine %s has %d BMCs linked (%s): remove the one that does not manage it (DELETE /api/v1/bmcs/{id}), or name the right one in the machine's bmc: %w",
		machineID, len(linked), strings.Join(ids, ", "), ErrSeveralBMCs)
}

// ErrSameBMC: a registration names a BMC already registered for another
// machine under another endpoint (http:// and https:// of one host and
// port are one BMC).
var ErrSameBMC = errors.New("that BMC manages another machine")

// ErrSeveralBMCs: a machine is linked to more than one BMC, and nothing
// says which drives it.
var ErrSeveralBMCs = errors.New("several BMCs for one machine")

// PollStats count polls since the Manager started.
type PollStats struct {
	Polls   int64 // polls done
	Failed  int64 // of which failed
	Written int64 // of which found something new and wrote it
}

type pollStats struct{ polls, failed, written atomic.Int64 }

// Stats are the poll counts so far.
func (m *Manager) Stats() PollStats {
	return PollStats{Polls: m.stats.polls.Load(), Failed: m.stats.failed.Load(), Written: m.stats.written.Load()}
}

// PollAll has every BMC polled now, whatever its schedule (the parts of
// the inventory that rarely change are read when they are due).
func (m *Manager) PollAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.targets {
		t.poke()
	}
}

// Run polls every BMC until ctx ends, then logs out of their sessions.
func (m *Manager) Run(ctx context.Context) {
	m.mu.Lock()
	m.run = ctx
	for _, t := range m.targets {
		m.startLocked(t)
	}
	m.mu.Unlock()
	if m.discovery != nil {
		m.loops.Go(func() { m.runDiscovery(ctx) })
	}
	<-ctx.Done()
	m.loops.Wait()
	m.logout()
	m.clients.close()
}

func (m *Manager) startLocked(t *target) {
	if m.run == nil || m.run.Err() != nil {
		return
	}
	m.loops.Add(1)
	go func() {
		defer m.loops.Done()
		m.pollLoop(m.run, t)
	}()
}

// logout ends the Redfish sessions: BMCs have few session slots, and a
// restarted Slipway must not find them all taken by its former self.
func (m *Manager) logout() {
	m.mu.Lock()
	defer m.mu.Unlock()
	var wg sync.WaitGroup
	for _, t := range m.targets {
		wg.Go(t.logout)
	}
	wg.Wait()
}
