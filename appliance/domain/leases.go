package domain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/slipway/slipway/store"
)

// Lease states as stored.
const (
	LeaseOffered  = "offered"
	LeaseBound    = "bound"
	LeaseReleased = "released"
	LeaseDeclined = "declined"
)

// ErrPoolExhausted means every address of the pool is leased, offered,
// reserved or quarantined.
var ErrPoolExhausted = errors.New("address pool exhausted")

// NakError is a request the server must refuse (DHCPNAK), with the reason
// the NAK carries.
type NakError struct{ Reason string }

func (e NakError) Error() string { return "refused: " + e.Reason }

// Pool is the address plan of the LAN.
type Pool struct {
	Subnet       netip.Prefix // the LAN, e.g. 10.88.0.0/24
	ServerIP     netip.Addr
	Start, End   netip.Addr // the dynamic range, inclusive
	LeaseTime    time.Duration
	Reservations map[MAC]Reservation
	// OfferHold is how long an offered address stays set aside for the
	// client that was offered it; Quarantine how long a declined address
	// stays out of use.
	OfferHold  time.Duration
	Quarantine time.Duration
}

// Reservation pins a MAC to an address.
type Reservation struct {
	IP       netip.Addr
	Hostname string
}

// Grant is an address given to a client.
type Grant struct {
	IP        netip.Addr
	Hostname  string
	LeaseTime time.Duration // what to tell the client
	Expires   time.Time     // when the stored lease (or offer) lapses
}

// leaseEntry is the in-memory image of one stored lease.
type leaseEntry struct {
	mac      MAC
	state    string
	hostname string
	expires  time.Time
}

// LeaseBook allocates addresses. The store is the truth for bound,
// released and declined leases; the book keeps an in-memory image of it so
// that allocation is not a table scan. Decisions are taken under one mutex
// on the image, so two clients can never be given one address; the write
// that makes a decision durable goes through the group committer outside
// the mutex, and the image is put back if it fails. Offers live only in the
// image (RFC 2131 lets a server forget them): a restart loses outstanding
// offers, never a bound lease.
type LeaseBook struct {
	db     *store.Store
	commit *store.Committer
	pool   Pool
	log    *slog.Logger
	now    func() time.Time
	// machines, if set, hears of every bound lease (the lifecycle starts there).
	machines *Inventory
	// bound, if set, hears of every lease bound, after it is durable.
	bound func(MAC, netip.Addr)

	mu         sync.Mutex
	byIP       map[netip.Addr]leaseEntry
	byMAC      map[MAC]netip.Addr
	reservedIP map[netip.Addr]MAC
	cursor     netip.Addr // next-fit: where the last search stopped
}

// NewLeaseBook loads the stored leases. machines, if not nil, is told of
// every lease bound.
func NewLeaseBook(ctx context.Context, db *store.Store, commit *store.Committer, pool Pool, machines *Inventory, log *slog.Logger) (*LeaseBook, error) {
	if pool.OfferHold <= 0 {
		pool.OfferHold = time.Minute
	}
	if pool.Quarantine <= 0 {
		pool.Quarantine = 10 * time.Minute
	}
	b := &LeaseBook{db: db, commit: commit, pool: pool, log: log, now: time.Now, machines: machines,
		byIP: map[netip.Addr]leaseEntry{}, byMAC: map[MAC]netip.Addr{}, reservedIP: map[netip.Addr]MAC{}, cursor: pool.Start}
	for mac, r := range pool.Reservations {
		b.reservedIP[r.IP] = mac
	}
	leases, err := db.Leases(ctx)
	if err != nil {
		return nil, fmt.Errorf("load leases: %w", err)
	}
	for _, l := range leases {
		ip, err := netip.ParseAddr(l.IP)
		if err != nil {
			return nil, fmt.Errorf("stored lease has a bad address %q: %w", l.IP, err)
		}
		b.byIP[ip] = leaseEntry{mac: MAC(l.MAC), state: l.State, hostname: l.Hostname, expires: l.ExpiresAt}
		if l.State == LeaseBound || l.State == LeaseOffered {
			b.byMAC[MAC(l.MAC)] = ip
		}
	}
	return b, nil
}

// OnBound has fn told of every lease bound (renewals too), after it is
// durable; fn must not block the DHCP answer. Set it before serving.
func (b *LeaseBook) OnBound(fn func(MAC, netip.Addr)) { b.bound = fn }

// Offer picks an address for mac (DHCPDISCOVER): its reservation, else the
// address it holds, else the one it asks for if free, else the next free one.
func (b *LeaseBook) Offer(ctx context.Context, mac MAC, requested netip.Addr, hostname string) (Grant, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	ip, ok := b.choose(mac, requested, now)
	if !ok {
		return Grant{}, ErrPoolExhausted
	}
	e := leaseEntry{mac: mac, state: LeaseOffered, hostname: b.hostnameFor(mac, hostname), expires: now.Add(b.pool.OfferHold)}
	b.set(ip, e)
	// The offer is held briefly, but it announces the lease the client will get.
	return Grant{IP: ip, Hostname: e.hostname, LeaseTime: b.pool.LeaseTime, Expires: e.expires}, nil
}

// RequestKind is a DHCPREQUEST's form (RFC 2131 §4.3.2).
type RequestKind int

const (
	// Selecting answers an offer: the request names this server.
	Selecting RequestKind = iota
	// InitReboot verifies the address a rebooted client remembers.
	InitReboot
	// Renewing (or rebinding) extends the lease of ciaddr.
	Renewing
)

// ErrNoRecord: an INIT-REBOOT from a client this server has no record of;
// RFC 2131 says to stay silent (another server may know it).
var ErrNoRecord = errors.New("no record of this client")

// Request confirms an address (DHCPREQUEST): it is bound when ip may be
// mac's in the request's form, and refused with a NakError otherwise. A MAC
// holds one lease: a client that takes a new address gives up its old one.
func (b *LeaseBook) Request(ctx context.Context, mac MAC, ip netip.Addr, hostname string, kind RequestKind) (Grant, error) {
	b.mu.Lock()
	now := b.now()
	held, holds := b.byMAC[mac]
	if err := b.checkRequest(mac, ip, kind, held, holds, now); err != nil {
		b.mu.Unlock()
		return Grant{}, err
	}
	e := leaseEntry{mac: mac, state: LeaseBound, hostname: b.hostnameFor(mac, hostname), expires: now.Add(b.pool.LeaseTime)}
	var retire func() error
	if holds && held != ip && b.byIP[held].mac == mac {
		old := leaseEntry{mac: mac, state: LeaseReleased, hostname: b.byIP[held].hostname, expires: now}
		undoOld := b.set(held, old)
		retire = func() error { return b.persist(ctx, held, old, undoOld) }
	}
	undo := b.set(ip, e)
	b.mu.Unlock()
	if retire != nil {
		if err := retire(); err != nil {
			return Grant{}, err
		}
		b.log.Info("client moved to another address; its old lease is released", "mac", mac, "old", held, "new", ip)
	}
	if err := b.persistBound(ctx, ip, e, undo); err != nil {
		return Grant{}, err
	}
	if b.bound != nil {
		b.bound(mac, ip)
	}
	return Grant{IP: ip, Hostname: e.hostname, LeaseTime: b.pool.LeaseTime, Expires: e.expires}, nil
}

// checkRequest applies RFC 2131 §4.3.2 to a request; b.mu is held.
func (b *LeaseBook) checkRequest(mac MAC, ip netip.Addr, kind RequestKind, held netip.Addr, holds bool, now time.Time) error {
	if !b.pool.Subnet.Contains(ip) {
		return NakError{fmt.Sprintf("%s is not on this network (%s)", ip, b.pool.Subnet.Masked())}
	}
	if r, reserved := b.pool.Reservations[mac]; reserved && r.IP != ip {
		return NakError{fmt.Sprintf("%s is reserved %s", mac, r.IP)}
	}
	switch {
	case kind == Selecting && holds && held != ip && b.byIP[held].state == LeaseOffered:
		return NakError{fmt.Sprintf("%s is not the address offered to %s (%s)", ip, mac, held)}
	case kind != Selecting && holds && held != ip:
		return NakError{fmt.Sprintf("%s is not %s's address: its lease is %s", ip, mac, held)}
	case kind == InitReboot && !holds && !b.knows(mac) && b.usable(ip, mac, now):
		return ErrNoRecord // an address that may well be its, from another server
	}
	if !b.usable(ip, mac, now) {
		return NakError{fmt.Sprintf("%s is not available to %s", ip, mac)}
	}
	return nil
}

// knows says whether any stored lease (released ones too) is mac's; b.mu
// is held.
func (b *LeaseBook) knows(mac MAC) bool {
	for _, e := range b.byIP {
		if e.mac == mac {
			return true
		}
	}
	return false
}

// Release ends mac's lease of ip (DHCPRELEASE). The row stays, so the client
// gets the same address next time if nobody else took it.
func (b *LeaseBook) Release(ctx context.Context, mac MAC, ip netip.Addr) error {
	b.mu.Lock()
	old, ok := b.byIP[ip]
	if !ok || old.mac != mac || old.state == LeaseDeclined {
		b.mu.Unlock()
		return nil // nothing of this client's to release
	}
	e := leaseEntry{mac: mac, state: LeaseReleased, hostname: old.hostname, expires: b.now()}
	undo := b.set(ip, e)
	b.mu.Unlock()
	return b.persist(ctx, ip, e, undo)
}

// Decline quarantines ip, which mac found in use by someone else
// (DHCPDECLINE after an ARP probe).
func (b *LeaseBook) Decline(ctx context.Context, mac MAC, ip netip.Addr) error {
	b.mu.Lock()
	if e, ok := b.byIP[ip]; !ok || e.mac != mac {
		b.mu.Unlock()
		return nil // a decline for an address we did not give this client
	}
	e := leaseEntry{state: LeaseDeclined, expires: b.now().Add(b.pool.Quarantine)}
	undo := b.set(ip, e)
	delete(b.byMAC, mac)
	b.mu.Unlock()
	err := b.persist(ctx, ip, e, undo)
	if err == nil {
		b.log.Warn("address declined by client: another host uses it; quarantined", "ip", ip, "mac", mac, "for", b.pool.Quarantine)
	}
	return err
}

// Active counts addresses currently offered or bound, for metrics.
func (b *LeaseBook) Active() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	now, n := b.now(), 0
	for _, e := range b.byIP {
		if (e.state == LeaseBound || e.state == LeaseOffered) && now.Before(e.expires) {
			n++
		}
	}
	return n
}

// PoolSize is the number of addresses in the dynamic range.
func (b *LeaseBook) PoolSize() int {
	return int(addrToUint(b.pool.End)-addrToUint(b.pool.Start)) + 1
}

func (b *LeaseBook) choose(mac MAC, requested netip.Addr, now time.Time) (netip.Addr, bool) {
	if r, ok := b.pool.Reservations[mac]; ok {
		if b.usable(r.IP, mac, now) {
			return r.IP, true
		}
		b.log.Warn("reserved address is held by another client; offering from the pool", "mac", mac, "reserved", r.IP)
	}
	if ip, ok := b.byMAC[mac]; ok && b.inPool(ip) && b.usable(ip, mac, now) {
		return ip, true
	}
	if requested.IsValid() && b.inPool(requested) && b.usable(requested, mac, now) {
		return requested, true
	}
	size := uint32(b.PoolSize())
	start := addrToUint(b.pool.Start)
	offset := addrToUint(b.cursor) - start
	for i := uint32(0); i < size; i++ {
		ip := uintToAddr(start + (offset+i)%size)
		if b.usable(ip, mac, now) {
			b.cursor = uintToAddr(start + (offset+i+1)%size)
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// usable says whether mac may hold ip now.
func (b *LeaseBook) usable(ip netip.Addr, mac MAC, now time.Time) bool {
	if ip == b.pool.ServerIP || ip == b.pool.Subnet.Masked().Addr() || ip == BroadcastAddr(b.pool.Subnet) {
		return false
	}
	if owner, reserved := b.reservedIP[ip]; reserved && owner != mac {
		return false
	}
	if !b.inPool(ip) {
		if _, reserved := b.reservedIP[ip]; !reserved {
			return false
		}
	}
	e, leased := b.byIP[ip]
	switch {
	case !leased:
		return true
	case e.state == LeaseDeclined:
		return now.After(e.expires)
	case e.mac == mac, e.state == LeaseReleased:
		return true
	default:
		return now.After(e.expires)
	}
}

func (b *LeaseBook) inPool(ip netip.Addr) bool {
	return !ip.Less(b.pool.Start) && !b.pool.End.Less(ip)
}

// hostnameFor is the reservation's hostname, else what the client asked
// for made a valid hostname: option 12 can carry any bytes, and the lease's
// hostname is echoed to the client and shown.
func (b *LeaseBook) hostnameFor(mac MAC, asked string) string {
	if r, ok := b.pool.Reservations[mac]; ok && r.Hostname != "" {
		return r.Hostname
	}
	return SanitizeHostname(asked)
}

// set puts e in the image for ip and returns how to undo it. Callers hold mu.
func (b *LeaseBook) set(ip netip.Addr, e leaseEntry) (undo func()) {
	prev, had := b.byIP[ip]
	prevOfMAC, hadMAC := b.byMAC[e.mac]
	if had && prev.mac != e.mac && b.byMAC[prev.mac] == ip {
		delete(b.byMAC, prev.mac)
	}
	b.byIP[ip] = e
	if e.state == LeaseBound || e.state == LeaseOffered {
		b.byMAC[e.mac] = ip
	}
	return func() {
		if cur, ok := b.byIP[ip]; !ok || cur != e {
			return // someone decided after us; their entry stands
		}
		if had {
			b.byIP[ip] = prev
		} else {
			delete(b.byIP, ip)
		}
		if hadMAC {
			b.byMAC[e.mac] = prevOfMAC
		} else if b.byMAC[e.mac] == ip {
			delete(b.byMAC, e.mac)
		}
	}
}

// persistBound makes a bound lease durable and, in the same transaction,
// moves the machine's lifecycle if the lease starts it: one commit, so the
// ACK waits for no more than the lease alone.
func (b *LeaseBook) persistBound(ctx context.Context, ip netip.Addr, e leaseEntry, undo func()) error {
	ev := Event{Kind: EventDHCPLease, Cause: "DHCP lease " + ip.String()}
	var id string
	var moves bool
	if b.machines != nil {
		id, moves = b.machines.applies(e.mac, ev)
	}
	if !moves {
		return b.persist(ctx, ip, e, undo)
	}
	var notes commitNotes
	var lifecycleErr error
	err := b.persistWith(ctx, ip, e, undo, func(tx *store.Tx) error {
		notes = commitNotes{}
		// The lease must not fail for the lifecycle's sake: its error is
		// logged, and its writes are undone by their own savepoint.
		lifecycleErr = tx.Savepoint(func(tx *store.Tx) error { return b.machines.notifyInTx(tx, id, ev, &notes) })
		return nil
	})
	if err == nil && lifecycleErr == nil {
		b.machines.committed(notes)
	}
	b.machines.logNotifyError(id, e.mac, ev, lifecycleErr)
	return err
}

// persist makes a decision durable; if the store refuses it, the image is
// put back as it was, so memory never claims what the disk does not hold.
func (b *LeaseBook) persist(ctx context.Context, ip netip.Addr, e leaseEntry, undo func()) error {
	return b.persistWith(ctx, ip, e, undo, nil)
}

// persistWith is persist with more writes (also may be nil) in the same transaction.
func (b *LeaseBook) persistWith(ctx context.Context, ip netip.Addr, e leaseEntry, undo func(), also func(tx *store.Tx) error) error {
	err := b.commit.Do(ctx, func(tx *store.Tx) error {
		if err := tx.PutLease(store.Lease{IP: ip.String(), MAC: string(e.mac), Hostname: e.hostname, State: e.state, ExpiresAt: e.expires}); err != nil {
			return err
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	if err != nil {
		b.mu.Lock()
		undo()
		b.mu.Unlock()
		return fmt.Errorf("store lease of %s: %w", ip, err)
	}
	return nil
}

func addrToUint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func uintToAddr(n uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// BroadcastAddr is the last address of an IPv4 prefix.
func BroadcastAddr(p netip.Prefix) netip.Addr {
	return uintToAddr(addrToUint(p.Masked().Addr()) | (1<<(32-p.Bits()) - 1))
}
