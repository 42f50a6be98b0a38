package bmc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stmcginnis/gofish"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/store"
)

// target is one BMC being polled. Its connection is used by one poll or
// one action at a time (use), so a Redfish session is opened once and
// reused until the BMC refuses it.
type target struct {
	wake chan struct{} // poll now: after an action, or a new registration
	gone chan struct{} // closed when the BMC is removed: its poll loop ends

	use  chan struct{} // a one-slot lock that a waiter can give up on
	reg  store.BMC     // guarded by use
	conn *gofish.APIClient
	auth string // how conn logged in: AuthSession or AuthBasic
	// fails counts polls in a row that failed, for the backoff.
	fails int
	// inventoryAt is when the whole inventory was last read (guarded by
	// use); refresh asks the next poll to read it all again.
	inventoryAt time.Time
	refresh     atomic.Bool

	status statusBox
}

func newTarget(b store.BMC, log *slog.Logger) *target {
	t := &target{wake: make(chan struct{}, 1), gone: make(chan struct{}), use: make(chan struct{}, 1), reg: b}
	s, err := statusOf(b)
	if err != nil {
		log.Warn("BMC status", "bmc_id", b.ID, "error", err)
	}
	t.status.set(s)
	return t
}

// acquire takes the connection, unless ctx ends first.
func (t *target) acquire(ctx context.Context) error {
	select {
	case t.use <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *target) release() { <-t.use }

func (t *target) snapshot() Status { return t.status.get() }

// refreshSoon has t polled now, its whole inventory read again.
func (t *target) refreshSoon() {
	t.refresh.Store(true)
	t.poke()
}

func (t *target) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// registeredAs says whether r would change nothing of t's registration.
func (t *target) registeredAs(ctx context.Context, r Registration, sealer *Sealer) bool {
	if t.acquire(ctx) != nil {
		return false
	}
	defer t.release()
	b := t.reg
	if b.Endpoint != r.Endpoint || b.Username != r.Username || b.Insecure != r.Insecure || b.Source != r.Source || b.System != r.System ||
		(r.MachineID != "" && (b.MachineID != r.MachineID || b.LinkedBy != r.Source)) {
		return false
	}
	pw, err := sealer.Open(b.Secret, b.ID)
	return err == nil && pw == r.Password
}

// reregister takes new credentials or a new endpoint: the old session is
// dropped and the BMC polled at once.
func (t *target) reregister(b store.BMC) {
	_ = t.acquire(context.Background())
	t.logoutLocked()
	t.reg, t.fails = b, 0
	s := t.status.get()
	s.Endpoint, s.Username, s.Insecure, s.Source = b.Endpoint, b.Username, b.Insecure, b.Source
	if b.MachineID != "" {
		s.MachineID, s.LinkedBy = b.MachineID, b.LinkedBy
	}
	t.status.set(s)
	t.release()
	t.refreshSoon()
}

func (t *target) logout() {
	_ = t.acquire(context.Background())
	defer t.release()
	t.logoutLocked()
}

func (t *target) logoutLocked() {
	if t.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		t.conn.WithContext(ctx).Logout()
		cancel()
		t.conn = nil
	}
}

// pollLoop polls t now and then every interval (with jitter), backing off
// exponentially while the BMC fails, until ctx ends.
func (m *Manager) pollLoop(ctx context.Context, t *target) {
	for {
		wait := time.NewTimer(m.nextPoll(m.pollOnce(ctx, t)))
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-t.gone:
			wait.Stop()
			return
		case <-wait.C:
		case <-t.wake:
			wait.Stop()
		}
	}
}

// nextPoll is the interval, doubled per failure in a row up to MaxBackoff,
// ±10 % so that BMCs registered together do not stay in lockstep.
func (m *Manager) nextPoll(fails int) time.Duration {
	p := m.cfg.Poll
	d := p.Interval
	for i := 0; i < fails && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// pollOnce collects a BMC's inventory and records what changed; it
// returns how many polls in a row have failed, for the backoff.
func (m *Manager) pollOnce(ctx context.Context, t *target) (fails int) {
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	defer func() { <-m.slots }()
	if t.acquire(ctx) != nil {
		return 0
	}
	defer t.release()
	defer func() { fails = t.fails }() // whichever way it returns
	next := t.status.get()
	system := t.reg.System
	// The whole inventory when it is due; else the system alone, the rest
	// carried over from the last poll.
	var known *Inventory
	if !t.refresh.Swap(false) && t.fails == 0 && next.Reachable && time.Since(t.inventoryAt) < m.cfg.Poll.InventoryInterval {
		known = &next.Inventory
	}
	read := time.Now()
	pollCtx, cancel := context.WithTimeoutCause(ctx, m.cfg.Poll.pollDeadline(), errPollOverran)
	defer cancel()
	got, err := withConn(pollCtx, m, t, func(c *gofish.APIClient) (collected, error) { return collect(c, system, known) })
	inv := got.Inventory
	if ctx.Err() != nil {
		return // shutting down: what an aborted poll saw is not news
	}
	if err != nil && context.Cause(pollCtx) == errPollOverran {
		err = fmt.Errorf("%w (%s)", errPollOverran, m.cfg.Poll.pollDeadline())
	}
	// Counted once its findings are recorded (or found unchanged), so that
	// a count of polls done means their statuses are there to read.
	defer m.stats.polls.Add(1)
	if err != nil {
		m.stats.failed.Add(1)
		t.fails++
		next.Reachable, next.LastError = describe(err, t.reg.Username, m.cfg.Poll.Timeout)
	} else {
		t.fails = 0
		if !got.carriedOver {
			t.inventoryAt = read
		}
		inv.Auth = t.auth
		next.Reachable, next.LastError, next.Inventory = true, "", inv
		m.link(ctx, t.status.get(), &next)
		m.clearOverride(ctx, t, next)
	}
	if sameFindings(t.status.get(), next) {
		return
	}
	if err := m.record(ctx, &next); err != nil {
		m.log.Error("BMC: cannot record a poll", "bmc_id", next.ID, "error", err)
		return
	}
	m.stats.written.Add(1)
	m.logChange(t.status.get(), next)
	t.status.set(next)
	if system == "" && len(next.Inventory.Systems) > 1 {
		m.registerSystems(ctx, t.reg, next.Inventory.Systems)
	}
	return
}

// registerSystems gives each system of a BMC that manages several (but
// the first, which the BMC's own record manages) a record of its own, so
// that each links to its own machine; b is the first's record.
func (m *Manager) registerSystems(ctx context.Context, b store.BMC, systems []string) {
	pw, err := m.cfg.Sealer.Open(b.Secret, b.ID)
	if err != nil {
		return
	}
	for _, sys := range systems[1:] {
		if m.managed(b.Endpoint, sys) {
			continue
		}
		_, err := m.Register(ctx, Registration{Endpoint: b.Endpoint, Username: b.Username, Password: pw, Insecure: b.Insecure,
			Source: domain.SourceDiscovered, System: sys})
		if err != nil {
			m.log.Warn("BMC: cannot register a system it manages", "bmc_id", b.ID, "system", sys, "error", err)
			continue
		}
		m.log.Info("BMC manages several systems: registered one on its own", "bmc_id", IDForSystem(b.Endpoint, sys), "of", b.ID, "system", sys)
	}
}

// managed says whether a record (other than the first's) manages system
// at endpoint, by its URI or its Id.
func (m *Manager) managed(endpoint, system string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.targets {
		if r := t.reg; r.Endpoint == endpoint && r.System != "" && (r.System == system || r.System == path.Base(system)) {
			return true
		}
	}
	return false
}

// withConn runs fn on t's Redfish connection, opening one if needed. A
// reused session the BMC no longer honours (expired, BMC rebooted) is
// replaced once.
func withConn[T any](ctx context.Context, m *Manager, t *target, fn func(*gofish.APIClient) (T, error)) (T, error) {
	var zero T
	fresh := false
	if t.conn == nil {
		pw, err := m.cfg.Sealer.Open(t.reg.Secret, t.reg.ID)
		if err != nil {
			return zero, err
		}
		if t.conn, t.auth, err = m.clients.connect(ctx, t.reg.Endpoint, t.reg.Username, pw, t.reg.Insecure); err != nil {
			t.conn = nil
			return zero, err
		}
		fresh = true
	}
	v, err := fn(t.conn.WithContext(ctx))
	if err != nil && authRefused(err) && !fresh {
		t.conn = nil
		return withConn(ctx, m, t, fn)
	}
	if err != nil && !answeredAtAll(err) {
		t.conn = nil // reconnect next time: the BMC may have rebooted
	}
	return v, err
}

func answeredAtAll(err error) bool {
	answered, _ := describe(err, "", 0)
	return answered
}

// link decides which machine a BMC manages: an explicit link stands; else
// the machine that owns one of the host MACs, adopting the host as a new
// machine if none does, so that it can be provisioned before it ever
// netbooted.
func (m *Manager) link(ctx context.Context, prev Status, s *Status) {
	if len(s.Inventory.MACs) == 0 || m.cfg.Machines == nil {
		return
	}
	macs := make([]domain.MAC, len(s.Inventory.MACs))
	for i, mac := range s.Inventory.MACs {
		macs[i] = domain.MAC(mac)
	}
	cause := fmt.Sprintf("host NICs reported by BMC %s", s.ID)
	if s.LinkedBy == domain.SourceConfig || s.LinkedBy == domain.SourceAPI || s.LinkedBy == domain.SourceDesign {
		// The link stands; a machine listed without MACs learns them here,
		// once: not at every poll that finds the same NICs.
		if prev.Reachable && slices.Equal(prev.Inventory.MACs, s.Inventory.MACs) {
			return
		}
		if _, err := m.cfg.Machines.GiveMACs(ctx, s.MachineID, macs, cause); err != nil {
			m.log.Warn("BMC: cannot give its machine the host NICs", "bmc_id", s.ID, "machine_id", s.MachineID, "error", err)
		}
		return
	}
	id, err := m.cfg.Machines.Adopt(ctx, macs, cause)
	if err != nil {
		m.log.Warn("BMC: cannot link to a machine", "bmc_id", s.ID, "macs", s.Inventory.MACs, "error", err)
		return
	}
	if other := m.linkedTo(id, s.ID); other != "" {
		// A second BMC for one machine would leave provisioning to guess:
		// it stays unlinked, and says why (logged once, as a change).
		s.MachineID, s.LinkedBy = "", ""
		s.LastError = fmt.Sprintf("it reports the host NICs of machine %s, which BMC %s manages: not linked (remove one of the two, or name this one in the machine's bmc)", id, other)
		return
	}
	s.MachineID, s.LinkedBy = id, "mac"
}

// linkedTo is the BMC, other than self, linked to machine id ("" if none).
func (m *Manager) linkedTo(id, self string) string {
	for _, st := range m.Statuses() {
		if st.MachineID == id && st.ID != self {
			return st.ID
		}
	}
	return ""
}

// record stores a BMC's new findings and their bus message in one commit.
func (m *Manager) record(ctx context.Context, s *Status) error {
	err := m.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		if err := tx.SetBMCStatus(s.ID, s.storeStatus(), s.MachineID, s.LinkedBy); err != nil {
			return err
		}
		s.ChangedAt = tx.Now()
		if m.cfg.Announce == nil {
			return nil
		}
		outbox.Enqueue(tx, m.cfg.Announce.BMCMessage(*s))
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted while being polled
	}
	return err
}

func (m *Manager) logChange(was, now Status) {
	switch {
	case now.LastError != "" && now.LastError != was.LastError:
		m.log.Warn("BMC not usable", "bmc_id", now.ID, "endpoint", now.Endpoint, "reachable", now.Reachable, "error", now.LastError)
	case now.LastError == "" && was.LastError != "":
		m.log.Info("BMC usable again", "bmc_id", now.ID, "endpoint", now.Endpoint)
	default:
		m.log.Info("BMC changed", "bmc_id", now.ID, "machine_id", now.MachineID, "power", now.Inventory.PowerState,
			"model", now.Inventory.Model, "bmc_version", now.Inventory.BMCVersion, "bios_version", now.Inventory.BIOSVersion)
	}
}

// statusBox holds a BMC's last recorded status; readers never wait for a
// poll in flight.
type statusBox struct {
	mu sync.Mutex
	s  Status
}

func (b *statusBox) get() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s // its slices are replaced, never changed in place
}

func (b *statusBox) set(s Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.s = s
}
