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

// Pool is the address plan of one subnet: the LAN's, or one behind a
// DHCP relay.
type Pool struct {
	Subnet netip.Prefix // e.g. 10.88.0.0/24
	// ServerIP and Router are never leased: the box's own address (on the
	// LAN) and the subnet's gateway (a relayed subnet's relay).
	ServerIP, Router netip.Addr
	Start, End       netip.Addr // the dynamic range, inclusive
	LeaseTime        time.Duration
	// Reservations hold in this subnet only: a reserved MAC that turns up
	// on another subnet gets an address of that one's range.
	Reservations map[MAC]Reservation
	// OfferHold is how long an offered address stays set aside for the
	// client that was offered it; Quarantine how long a declined address
	// stays out of use.
	OfferHold  time.Duration
	Quarantine time.Duration
	// CacheThreshold is the share of LeaseTime (0–1) within which a bound
	// lease asked for again is answered as it stands, for the time it has
	// left, without a write (ISC dhcpd's dhcp-cache-threshold, Kea's
	// cache-threshold): a machine's firmware and then its iPXE, a minute
	// apart, cost one write, not two. 0 writes every renewal.
	CacheThreshold float64
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
	Cached    bool          // a REQUEST answered from the lease cache, nothing written
}

// pool is a Pool and where its next-fit search stopped.
type pool struct {
	Pool
	cursor netip.Addr
}

// ErrNoPool: an address was asked for on a subnet that has no pool.
var ErrNoPool = errors.New("no address pool for this subnet")

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
//
// The book holds one pool per subnet (the LAN's and any relayed ones) and
// one lease per MAC across all of them: a client that moves to another
// subnet gives up the address it held on the first once it is bound on the
// second.
type LeaseBook struct {
	db     *store.Store
	commit *store.Committer
	pools  []*pool
	log    *slog.Logger
	now    func() time.Time
	// machines, if set, hears of every bound lease (the lifecycle starts there).
	machines *Inventory
	// bound, if set, hears of every lease bound, after it is durable.
	bound func(MAC, netip.Addr)

	mu      sync.Mutex
	byIP    map[netip.Addr]leaseEntry
	byMAC   map[MAC]netip.Addr // the address a MAC was last offered or bound
	boundAt map[MAC]netip.Addr // the address a MAC holds bound, if any
	// writing counts the bindings of an address on their way to the disk:
	// until they are there, a request is not answered from the cache.
	writing    map[netip.Addr]int
	reservedIP map[netip.Addr]MAC
}

// NewLeaseBook loads the stored leases. pools are the subnets' address
// plans, which must not overlap. machines, if not nil, is told of every
// lease bound.
func NewLeaseBook(ctx context.Context, db *store.Store, commit *store.Committer, pools []Pool, machines *Inventory, log *slog.Logger) (*LeaseBook, error) {
	if len(pools) == 0 {
		return nil, errors.New("lease book: no address pool")
	}
	b := &LeaseBook{db: db, commit: commit, log: log, now: time.Now, machines: machines,
		byIP: map[netip.Addr]leaseEntry{}, byMAC: map[MAC]netip.Addr{}, boundAt: map[MAC]netip.Addr{}, writing: map[netip.Addr]int{}, reservedIP: map[netip.Addr]MAC{}}
	for _, p := range pools {
		if p.OfferHold <= 0 {
			p.OfferHold = time.Minute
		}
		if p.Quarantine <= 0 {
			p.Quarantine = 10 * time.Minute
		}
		p.Subnet = p.Subnet.Masked()
		b.pools = append(b.pools, &pool{Pool: p, cursor: p.Start})
		for mac, r := range p.Reservations {
			b.reservedIP[r.IP] = mac
		}
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
		if l.State == LeaseBound {
			b.boundAt[MAC(l.MAC)] = ip
		}
	}
	return b, nil
}

// OnBound has fn told of every lease bound (renewals too), after it is
// durable; fn must not block the DHCP answer. Set it before serving.
func (b *LeaseBook) OnBound(fn func(MAC, netip.Addr)) { b.bound = fn }

// Offer picks an address of subnet's pool for mac (DHCPDISCOVER): its
// reservation, else the address it holds, else the one it asks for if
// free, else the next free one.
func (b *LeaseBook) Offer(ctx context.Context, subnet netip.Prefix, mac MAC, requested netip.Addr, hostname string) (Grant, error) {
	p, err := b.poolFor(subnet)
	if err != nil {
		return Grant{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	ip, ok := b.choose(p, mac, requested, now)
	if !ok {
		return Grant{}, fmt.Errorf("%s: %w", p.Subnet, ErrPoolExhausted)
	}
	if held := b.byIP[ip]; held.mac == mac && held.state == LeaseBound && held.expires.After(now) {
		// A client that holds the address bound (firmware handing over to
		// iPXE, or a late copy of a DISCOVER) is offered it again, and its
		// binding stands. Turned into an offer, the binding would end with
		// the offer's short hold if no REQUEST followed: the machine would
		// lose its address, and it would be free for another. A storm
		// found it: a retransmitted DISCOVER answered after the REQUEST.
		return Grant{IP: ip, Hostname: held.hostname, LeaseTime: p.LeaseTime, Expires: held.expires}, nil
	}
	e := leaseEntry{mac: mac, state: LeaseOffered, hostname: p.hostnameFor(mac, hostname), expires: now.Add(p.OfferHold)}
	b.set(ip, e)
	// The offer is held briefly, but it announces the lease the client will get.
	return Grant{IP: ip, Hostname: e.hostname, LeaseTime: p.LeaseTime, Expires: e.expires}, nil
}

// poolFor is subnet's pool.
func (b *LeaseBook) poolFor(subnet netip.Prefix) (*pool, error) {
	for _, p := range b.pools {
		if p.Subnet == subnet.Masked() {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", subnet, ErrNoPool)
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

// Request confirms an address on subnet (DHCPREQUEST): it is bound when ip
// may be mac's in the request's form, and refused with a NakError
// otherwise. A MAC holds one lease: a client that takes a new address
// gives up its old one.
func (b *LeaseBook) Request(ctx context.Context, subnet netip.Prefix, mac MAC, ip netip.Addr, hostname string, kind RequestKind) (Grant, error) {
	p, err := b.poolFor(subnet)
	if err != nil {
		return Grant{}, err
	}
	b.mu.Lock()
	now := b.now()
	held, holds := b.byMAC[mac]
	if err := b.checkRequest(p, mac, ip, kind, held, holds, now); err != nil {
		b.mu.Unlock()
		return Grant{}, err
	}
	e := leaseEntry{mac: mac, state: LeaseBound, hostname: p.hostnameFor(mac, hostname), expires: now.Add(p.LeaseTime)}
	if expires, ok := b.cached(p, ip, e, now); ok && !b.movesLifecycle(mac, ip) {
		b.mu.Unlock()
		if b.bound != nil {
			b.bound(mac, ip)
		}
		return Grant{IP: ip, Hostname: e.hostname, LeaseTime: expires.Sub(now).Truncate(time.Second), Expires: expires, Cached: true}, nil
	}
	prevBound, boundElsewhere := b.boundAt[mac]
	moved := boundElsewhere && prevBound != ip
	var undoOld func()
	if moved {
		old := leaseEntry{mac: mac, state: LeaseReleased, hostname: b.byIP[prevBound].hostname, expires: now}
		undoOld = b.set(prevBound, old)
		if _, err := b.journal(prevBound, old); err != nil {
			undoOld()
			b.mu.Unlock()
			return Grant{}, err
		}
	}
	undo := b.set(ip, e)
	ticket, err := b.journal(ip, e)
	if err != nil {
		undo()
		if moved {
			b.journalUndone(prevBound, undoOld)
		}
		b.mu.Unlock()
		return Grant{}, err
	}
	b.writing[ip]++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		if b.writing[ip]--; b.writing[ip] == 0 {
			delete(b.writing, ip)
		}
		b.mu.Unlock()
	}()
	if moved {
		b.log.Info("client moved to another address; its old lease is released", "mac", mac, "old", prevBound, "new", ip)
	}
	if err := b.bindDurably(ctx, ip, e, ticket); err != nil {
		return Grant{}, err
	}
	if b.bound != nil {
		b.bound(mac, ip)
	}
	return Grant{IP: ip, Hostname: e.hostname, LeaseTime: p.LeaseTime, Expires: e.expires}, nil
}

// movesLifecycle says whether binding ip would move mac's machine (a
// machine created since its lease was written starts its lifecycle with
// the next one): such a binding is written, never answered from the cache.
func (b *LeaseBook) movesLifecycle(mac MAC, ip netip.Addr) bool {
	if b.machines == nil {
		return false
	}
	_, moves := b.machines.applies(mac, leaseEvent(ip))
	return moves
}

// leaseEvent is what a bound lease tells the machine's lifecycle.
func leaseEvent(ip netip.Addr) Event {
	return Event{Kind: EventDHCPLease, Cause: "DHCP lease " + ip.String()}
}

// cached is when ip's stored lease ends if it may answer the request as it
// stands: bound to the same client with the same hostname, on disk, and
// written within p's cache threshold of its lease time. b.mu is held.
func (b *LeaseBook) cached(p *pool, ip netip.Addr, want leaseEntry, now time.Time) (time.Time, bool) {
	held, ok := b.byIP[ip]
	if !ok || held.state != LeaseBound || held.mac != want.mac || held.hostname != want.hostname || b.writing[ip] > 0 {
		return time.Time{}, false
	}
	left := held.expires.Sub(now)
	age := p.LeaseTime - left // negative if the lease time was made shorter since
	return held.expires, left >= time.Second && age >= 0 && float64(age) < p.CacheThreshold*float64(p.LeaseTime)
}

// checkRequest applies RFC 2131 §4.3.2 to a request on p's subnet; b.mu
// is held.
func (b *LeaseBook) checkRequest(p *pool, mac MAC, ip netip.Addr, kind RequestKind, held netip.Addr, holds bool, now time.Time) error {
	if !p.Subnet.Contains(ip) {
		return NakError{fmt.Sprintf("%s is not on this network (%s)", ip, p.Subnet)}
	}
	if r, reserved := p.Reservations[mac]; reserved && r.IP != ip {
		return NakError{fmt.Sprintf("%s is reserved %s", mac, r.IP)}
	}
	switch {
	case kind == Selecting && holds && held != ip && b.byIP[held].state == LeaseOffered:
		return NakError{fmt.Sprintf("%s is not the address offered to %s (%s)", ip, mac, held)}
	case kind != Selecting && holds && held != ip:
		return NakError{fmt.Sprintf("%s is not %s's address: its lease is %s", ip, mac, held)}
	case kind == InitReboot && !holds && !b.knows(mac) && b.usable(p, ip, mac, now):
		return ErrNoRecord // an address that may well be its, from another server
	}
	if !b.usable(p, ip, mac, now) {
		return NakError{fmt.Sprintf("%s is not available to %s", ip, mac)}
	}
	return nil
}

// BoundTo is the address mac holds bound, expired or not: nobody else has
// been given it since.
func (b *LeaseBook) BoundTo(mac MAC) (netip.Addr, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ip, ok := b.boundAt[mac]
	return ip, ok
}

// Holds says whether mac holds a bound lease that has not expired.
func (b *LeaseBook) Holds(mac MAC) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	ip, ok := b.boundAt[mac]
	return ok && b.byIP[ip].expires.After(b.now())
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
	ticket, err := b.decide(ip, e)
	b.mu.Unlock()
	if err != nil {
		return err
	}
	return b.durable(ctx, ip, ticket)
}

// Decline quarantines ip, which mac found in use by someone else
// (DHCPDECLINE after an ARP probe).
func (b *LeaseBook) Decline(ctx context.Context, mac MAC, ip netip.Addr) error {
	b.mu.Lock()
	if e, ok := b.byIP[ip]; !ok || e.mac != mac {
		b.mu.Unlock()
		return nil // a decline for an address we did not give this client
	}
	quarantine := 10 * time.Minute
	if p := b.poolContaining(ip); p != nil {
		quarantine = p.Quarantine
	}
	e := leaseEntry{state: LeaseDeclined, expires: b.now().Add(quarantine)}
	ticket, err := b.decide(ip, e)
	if err == nil {
		delete(b.byMAC, mac)
	}
	b.mu.Unlock()
	if err == nil {
		err = b.durable(ctx, ip, ticket)
	}
	if err == nil {
		b.log.Warn("address declined by client: another host uses it; quarantined", "ip", ip, "mac", mac, "for", quarantine)
	}
	return err
}

// PoolUse is how full one subnet's dynamic range is.
type PoolUse struct {
	Subnet netip.Prefix
	Size   int // addresses in the range
	Active int // offered or bound and not expired
}

// Use is each pool's use, the LAN's first.
func (b *LeaseBook) Use() []PoolUse {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]PoolUse, len(b.pools))
	for i, p := range b.pools {
		out[i] = PoolUse{Subnet: p.Subnet, Size: p.size()}
	}
	now := b.now()
	for ip, e := range b.byIP {
		if (e.state != LeaseBound && e.state != LeaseOffered) || !now.Before(e.expires) {
			continue
		}
		for i, p := range b.pools {
			if p.Subnet.Contains(ip) {
				out[i].Active++
			}
		}
	}
	return out
}

// Active counts addresses currently offered or bound, in every pool.
func (b *LeaseBook) Active() int {
	n := 0
	for _, u := range b.Use() {
		n += u.Active
	}
	return n
}

// PoolSize is the number of addresses in every pool's dynamic range.
func (b *LeaseBook) PoolSize() int {
	n := 0
	for _, p := range b.pools {
		n += p.size()
	}
	return n
}

func (p *pool) size() int {
	return int(addrToUint(p.End)-addrToUint(p.Start)) + 1
}

// poolContaining is the pool whose subnet holds ip, or nil.
func (b *LeaseBook) poolContaining(ip netip.Addr) *pool {
	for _, p := range b.pools {
		if p.Subnet.Contains(ip) {
			return p
		}
	}
	return nil
}

func (b *LeaseBook) choose(p *pool, mac MAC, requested netip.Addr, now time.Time) (netip.Addr, bool) {
	if r, ok := p.Reservations[mac]; ok {
		if b.usable(p, r.IP, mac, now) {
			return r.IP, true
		}
		b.log.Warn("reserved address is held by another client; offering from the pool", "mac", mac, "reserved", r.IP)
	}
	if ip, ok := b.byMAC[mac]; ok && p.inRange(ip) && b.usable(p, ip, mac, now) {
		return ip, true
	}
	if requested.IsValid() && p.inRange(requested) && b.usable(p, requested, mac, now) {
		return requested, true
	}
	size := uint32(p.size())
	start := addrToUint(p.Start)
	offset := addrToUint(p.cursor) - start
	for i := uint32(0); i < size; i++ {
		ip := uintToAddr(start + (offset+i)%size)
		if b.usable(p, ip, mac, now) {
			p.cursor = uintToAddr(start + (offset+i+1)%size)
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// usable says whether mac may hold ip of p's subnet now.
func (b *LeaseBook) usable(p *pool, ip netip.Addr, mac MAC, now time.Time) bool {
	if ip == p.ServerIP || ip == p.Router || ip == p.Subnet.Addr() || ip == BroadcastAddr(p.Subnet) {
		return false
	}
	if owner, reserved := b.reservedIP[ip]; reserved && owner != mac {
		return false
	}
	if !p.inRange(ip) {
		if _, reserved := b.reservedIP[ip]; !reserved || !p.Subnet.Contains(ip) {
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

func (p *pool) inRange(ip netip.Addr) bool {
	return !ip.Less(p.Start) && !p.End.Less(ip)
}

// hostnameFor is the reservation's hostname, else what the client asked
// for made a valid hostname: option 12 can carry any bytes, and the lease's
// hostname is echoed to the client and shown.
func (p *pool) hostnameFor(mac MAC, asked string) string {
	if r, ok := p.Reservations[mac]; ok && r.Hostname != "" {
		return r.Hostname
	}
	return SanitizeHostname(asked)
}

// set puts e in the image for ip and returns how to undo it. Callers hold mu.
func (b *LeaseBook) set(ip netip.Addr, e leaseEntry) (undo func()) {
	prev, had := b.byIP[ip]
	prevOfMAC, hadMAC := b.byMAC[e.mac]
	prevBound, hadBound := b.boundAt[e.mac]
	prevOwnerBound := false // ip was bound by another MAC, which loses it
	if had && prev.mac != e.mac {
		if b.byMAC[prev.mac] == ip {
			delete(b.byMAC, prev.mac)
		}
		if b.boundAt[prev.mac] == ip {
			delete(b.boundAt, prev.mac)
			prevOwnerBound = true
		}
	}
	b.byIP[ip] = e
	if e.state == LeaseBound || e.state == LeaseOffered {
		b.byMAC[e.mac] = ip
	}
	if e.state == LeaseBound {
		b.boundAt[e.mac] = ip
	} else if hadBound && prevBound == ip {
		delete(b.boundAt, e.mac)
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
		if hadBound {
			b.boundAt[e.mac] = prevBound
		} else if b.boundAt[e.mac] == ip {
			delete(b.boundAt, e.mac)
		}
		if prevOwnerBound {
			b.boundAt[prev.mac] = ip
		}
	}
}

// journal writes ip's new entry to the store's lease journal. b.mu is
// held, so that the journal's order is the order of the decisions.
func (b *LeaseBook) journal(ip netip.Addr, e leaseEntry) (store.LeaseTicket, error) {
	t, err := b.db.JournalLease(store.Lease{IP: ip.String(), MAC: string(e.mac), Hostname: e.hostname, State: e.state, ExpiresAt: e.expires, UpdatedAt: b.now()})
	if err != nil {
		return 0, fmt.Errorf("store lease of %s: %w", ip, err)
	}
	return t, nil
}

// decide sets ip's entry and journals it, or leaves the image as it was if
// the journal refuses it: memory never claims what the disk does not hold.
// b.mu is held.
func (b *LeaseBook) decide(ip netip.Addr, e leaseEntry) (store.LeaseTicket, error) {
	undo := b.set(ip, e)
	t, err := b.journal(ip, e)
	if err != nil {
		undo()
	}
	return t, err
}

// journalUndone puts ip's entry back with undo and journals what it is
// again, for a decision journaled before a later one of the same request
// failed. b.mu is held.
func (b *LeaseBook) journalUndone(ip netip.Addr, undo func()) {
	undo()
	e, ok := b.byIP[ip]
	if !ok {
		return // nothing was stored for it before; the journaled release stands, harmlessly
	}
	if _, err := b.journal(ip, e); err != nil {
		b.log.Warn("could not journal a lease put back", "ip", ip, "error", err)
	}
}

// durable waits until the journaled decision t is as durable as the
// store promises. If that fails (the disk's sync failed) the decision
// stays in the image as it stays in the journal: the client hears nothing
// and asks again.
func (b *LeaseBook) durable(ctx context.Context, ip netip.Addr, t store.LeaseTicket) error {
	if err := b.db.LeaseDurable(ctx, t); err != nil {
		return fmt.Errorf("store lease of %s: %w", ip, err)
	}
	return nil
}

// bindDurably makes a journaled bound lease durable and, if it starts the
// machine's lifecycle, moves the lifecycle in a commit that applies the
// lease too (a commit applies every lease journaled before it), so that
// the ACK waits for one commit and the machine's next request finds it
// moved.
func (b *LeaseBook) bindDurably(ctx context.Context, ip netip.Addr, e leaseEntry, t store.LeaseTicket) error {
	ev := leaseEvent(ip)
	var id string
	var moves bool
	if b.machines != nil {
		id, moves = b.machines.applies(e.mac, ev)
	}
	if !moves {
		return b.durable(ctx, ip, t)
	}
	var notes commitNotes
	var lifecycleErr error
	err := b.commit.DoUrgent(ctx, func(tx *store.Tx) error {
		notes = commitNotes{}
		// The lease must not fail for the lifecycle's sake: its error is
		// logged, and its writes are undone by their own savepoint.
		lifecycleErr = tx.Savepoint(func(tx *store.Tx) error { return b.machines.notifyInTx(tx, id, ev, &notes) })
		return nil
	})
	if err != nil {
		return fmt.Errorf("store lease of %s: %w", ip, err)
	}
	if lifecycleErr == nil {
		b.machines.committed(notes)
	}
	b.machines.logNotifyError(id, e.mac, ev, lifecycleErr)
	return b.durable(ctx, ip, t)
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
