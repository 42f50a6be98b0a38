package domain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway/store"
)

var (
	macA = MAC("52:54:00:00:00:0a")
	macB = MAC("52:54:00:00:00:0b")
	macR = MAC("52:54:00:00:00:0c")
	macC = MAC("52:54:00:00:00:0d") // a client the book has no record of
)

// lan is testPool's subnet.
var lan = netip.MustParsePrefix("10.88.0.0/24")

func testPool() Pool {
	return Pool{
		Subnet: netip.MustParsePrefix("10.88.0.0/24"), ServerIP: netip.MustParseAddr("10.88.0.1"),
		Start: netip.MustParseAddr("10.88.0.100"), End: netip.MustParseAddr("10.88.0.103"),
		LeaseTime:    time.Hour,
		Reservations: map[MAC]Reservation{macR: {IP: netip.MustParseAddr("10.88.0.10"), Hostname: "reserved"}},
	}
}

func openBook(t *testing.T, path string, pool Pool) *LeaseBook {
	t.Helper()
	return openBooks(t, path, pool)
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestLeaseBookDecisions(t *testing.T) {
	ctx := context.Background()
	b := openBook(t, filepath.Join(t.TempDir(), "db"), testPool())
	steps := []struct {
		name    string
		do      func() (Grant, error)
		wantIP  string
		wantErr string
	}{
		{"first client gets the first address", func() (Grant, error) { return b.Offer(ctx, lan, macA, netip.Addr{}, "") }, "10.88.0.100", ""},
		{"and binds it", func() (Grant, error) { return b.Request(ctx, lan, macA, ip("10.88.0.100"), "", Selecting) }, "10.88.0.100", ""},
		{"asks again, gets the same", func() (Grant, error) { return b.Offer(ctx, lan, macA, ip("10.88.0.102"), "") }, "10.88.0.100", ""},
		{"another client gets what it asks for", func() (Grant, error) { return b.Offer(ctx, lan, macB, ip("10.88.0.102"), "") }, "10.88.0.102", ""},
		{"but not A's address", func() (Grant, error) { return b.Request(ctx, lan, macB, ip("10.88.0.100"), "", Selecting) }, "", "10.88.0.100 is not the address offered"},
		{"nor one off the network", func() (Grant, error) { return b.Request(ctx, lan, macC, ip("192.168.1.5"), "", Selecting) }, "", "not on this network"},
		{"nor one outside the pool", func() (Grant, error) { return b.Request(ctx, lan, macC, ip("10.88.0.50"), "", Selecting) }, "", "not available"},
		{"nor the server's own", func() (Grant, error) { return b.Request(ctx, lan, macC, ip("10.88.0.1"), "", Selecting) }, "", "not available"},
		{"nor A's reserved one", func() (Grant, error) { return b.Request(ctx, lan, macC, ip("10.88.0.10"), "", Selecting) }, "", "not available"},
		{"reservation is offered with its hostname", func() (Grant, error) { return b.Offer(ctx, lan, macR, ip("10.88.0.101"), "x") }, "10.88.0.10", ""},
		{"reserved client asking elsewhere is refused", func() (Grant, error) { return b.Request(ctx, lan, macR, ip("10.88.0.101"), "", Selecting) }, "", "reserved 10.88.0.10"},
	}
	for _, s := range steps {
		g, err := s.do()
		if s.wantErr != "" {
			var nak NakError
			if !errors.As(err, &nak) || !contains(err.Error(), s.wantErr) {
				t.Fatalf("%s: want NAK %q, got %v", s.name, s.wantErr, err)
			}
			continue
		}
		if err != nil || g.IP.String() != s.wantIP {
			t.Fatalf("%s: got %v, %v; want %s", s.name, g.IP, err, s.wantIP)
		}
	}
	if g, _ := b.Offer(ctx, lan, macR, netip.Addr{}, ""); g.Hostname != "reserved" {
		t.Errorf("reservation hostname = %q", g.Hostname)
	}
}

func TestLeaseBookExhaustionDeclineAndExpiry(t *testing.T) {
	ctx := context.Background()
	b := openBook(t, filepath.Join(t.TempDir(), "db"), testPool())
	clock := time.Now()
	b.now = func() time.Time { return clock }
	for i := range 4 {
		if _, err := b.Offer(ctx, lan, MAC(fmt.Sprintf("02:00:00:00:00:%02x", i)), netip.Addr{}, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Offer(ctx, lan, macB, netip.Addr{}, ""); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("fifth client: want ErrPoolExhausted, got %v", err)
	}
	// Offers lapse after the hold time; the address comes back.
	clock = clock.Add(2 * time.Minute)
	g, err := b.Offer(ctx, lan, macB, netip.Addr{}, "")
	if err != nil {
		t.Fatal(err)
	}
	// B finds the address in use and declines it: it is quarantined.
	if err := b.Decline(ctx, macB, g.IP); err != nil {
		t.Fatal(err)
	}
	g2, err := b.Offer(ctx, lan, macB, g.IP, "")
	if err != nil || g2.IP == g.IP {
		t.Fatalf("after decline, offered %v, %v; the declined %v must not come back", g2.IP, err, g.IP)
	}
	clock = clock.Add(11 * time.Minute)
	if !b.usable(b.pools[0], g.IP, macA, clock) {
		t.Fatalf("%v still quarantined after the quarantine", g.IP)
	}
}

func TestLeaseBookSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	b := openBook(t, path, testPool())
	if _, err := b.Request(ctx, lan, macA, ip("10.88.0.101"), "a", Selecting); err != nil {
		t.Fatal(err)
	}
	b.commit.Close()
	b.db.Close()
	b2 := openBook(t, path, testPool())
	if _, err := b2.Request(ctx, lan, macB, ip("10.88.0.101"), "", Selecting); err == nil {
		t.Fatal("after a restart, B was given A's bound address")
	}
	if g, err := b2.Offer(ctx, lan, macA, netip.Addr{}, ""); err != nil || g.IP != ip("10.88.0.101") {
		t.Fatalf("after a restart A was offered %v, %v", g.IP, err)
	}
}

func TestLeaseBookNeverGivesOneAddressTwice(t *testing.T) {
	ctx := context.Background()
	pool := testPool()
	pool.End = ip("10.88.0.250")
	b := openBook(t, filepath.Join(t.TempDir(), "db"), pool)
	var wg sync.WaitGroup
	got := make(chan netip.Addr, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mac := MAC(fmt.Sprintf("02:00:00:00:01:%02x", i))
			g, err := b.Offer(ctx, lan, mac, netip.Addr{}, "")
			if err == nil {
				g, err = b.Request(ctx, lan, mac, g.IP, "", Selecting)
			}
			if err != nil {
				t.Error(err)
				return
			}
			got <- g.IP
		}()
	}
	wg.Wait()
	close(got)
	seen := map[netip.Addr]bool{}
	for a := range got {
		if seen[a] {
			t.Fatalf("%v given twice", a)
		}
		seen[a] = true
	}
	if len(seen) != 100 {
		t.Fatalf("%d addresses for 100 clients", len(seen))
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// DHCPREQUEST in each of its forms, as RFC 2131 §4.3.2 has the server
// answer it: one lease per MAC, whatever the client asks.
func TestRequestFormsRFC2131(t *testing.T) {
	ctx := context.Background()
	b := openBook(t, filepath.Join(t.TempDir(), "db"), testPool())
	bind := func(mac MAC) netip.Addr {
		t.Helper()
		g, err := b.Offer(ctx, lan, mac, netip.Addr{}, "")
		if err == nil {
			_, err = b.Request(ctx, lan, mac, g.IP, "", Selecting)
		}
		if err != nil {
			t.Fatal(err)
		}
		return g.IP
	}
	a, other := bind(macA), bind(macB) // .100 and .101
	free := ip("10.88.0.103")
	for _, tc := range []struct {
		name string
		mac  MAC
		ip   netip.Addr
		kind RequestKind
		want string // the address granted, "NAK: …" or "silent"
	}{
		{"INIT-REBOOT with its own address", macA, a, InitReboot, a.String()},
		{"INIT-REBOOT for another free address", macA, free, InitReboot, "NAK: 10.88.0.103 is not 52:54:00:00:00:0a's address: its lease is 10.88.0.100"},
		{"INIT-REBOOT for another client's address", macA, other, InitReboot, "NAK: 10.88.0.101 is not 52:54:00:00:00:0a's address"},
		{"INIT-REBOOT off the network", macA, ip("192.168.7.7"), InitReboot, "NAK: 192.168.7.7 is not on this network"},
		{"INIT-REBOOT from a client with no record", macC, free, InitReboot, "silent"},
		{"INIT-REBOOT from a client with no record, for another's address", macC, other, InitReboot, "NAK: 10.88.0.101 is not available"},
		{"RENEWING its own lease", macA, a, Renewing, a.String()},
		{"REBINDING with another client's address", macA, other, Renewing, "NAK: 10.88.0.101 is not 52:54:00:00:00:0a's address"},
		{"REBINDING with a free address it does not hold", macA, free, Renewing, "NAK: 10.88.0.103 is not 52:54:00:00:00:0a's address"},
		{"RENEWING with no record, the address free (after a data loss)", macC, ip("10.88.0.102"), Renewing, "10.88.0.102"},
		{"SELECTING another client's address", macA, other, Selecting, "NAK: 10.88.0.101 is not available"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := b.Request(ctx, lan, tc.mac, tc.ip, "", tc.kind)
			var nak NakError
			got := g.IP.String()
			switch {
			case errors.Is(err, ErrNoRecord):
				got = "silent"
			case errors.As(err, &nak):
				got = "NAK: " + nak.Reason
			case err != nil:
				t.Fatal(err)
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	// A bound client that selects another address (an offer a previous
	// run made it) gives up its old lease: one per MAC.
	if _, err := b.Request(ctx, lan, macA, free, "", Selecting); err != nil {
		t.Fatal(err)
	}
	rows, _ := b.db.Leases(ctx)
	bound := 0
	for _, r := range rows {
		if MAC(r.MAC) == macA && r.State == LeaseBound {
			bound++
		}
	}
	if bound != 1 {
		t.Errorf("%d bound leases for one MAC: %+v", bound, rows)
	}
}

// TestLeaseBookPoolsPerSubnet: a relayed subnet has its own range, lease
// time and reservations, and a MAC still holds one lease across subnets.
func TestLeaseBookPoolsPerSubnet(t *testing.T) {
	ctx := context.Background()
	rack := netip.MustParsePrefix("10.89.0.0/24")
	relayed := Pool{
		Subnet: rack, Router: ip("10.89.0.1"),
		Start: ip("10.89.0.1"), End: ip("10.89.0.3"), LeaseTime: 2 * time.Hour,
		Reservations: map[MAC]Reservation{macB: {IP: ip("10.89.0.50"), Hostname: "rack-b"}},
	}
	db := filepath.Join(t.TempDir(), "db")
	b := openBooks(t, db, testPool(), relayed)
	bind := func(subnet netip.Prefix, mac MAC) (Grant, error) {
		g, err := b.Offer(ctx, subnet, mac, netip.Addr{}, "")
		if err != nil {
			return g, err
		}
		return b.Request(ctx, subnet, mac, g.IP, "", Selecting)
	}
	steps := []struct {
		name      string
		do        func() (Grant, error)
		wantIP    string
		wantLease time.Duration
		wantErr   string
	}{
		{"the relayed range skips the router", func() (Grant, error) { return bind(rack, macA) }, "10.89.0.2", 2 * time.Hour, ""},
		{"the LAN keeps its own range and lease time", func() (Grant, error) { return bind(lan, macC) }, "10.88.0.100", time.Hour, ""},
		{"a reservation holds on its subnet", func() (Grant, error) { return bind(rack, macB) }, "10.89.0.50", 2 * time.Hour, ""},
		{"and not on another", func() (Grant, error) { return bind(lan, macB) }, "10.88.0.101", time.Hour, ""},
		{"a LAN address is not on the relayed network", func() (Grant, error) {
			return b.Request(ctx, rack, macC, ip("10.88.0.100"), "", InitReboot)
		}, "", 0, "not on this network (10.89.0.0/24)"},
		{"a client moving subnets gets an address there", func() (Grant, error) { return bind(lan, macA) }, "10.88.0.102", time.Hour, ""},
		{"a subnet without a pool is an error", func() (Grant, error) { return bind(netip.MustParsePrefix("10.90.0.0/24"), macA) }, "", 0, "no address pool"},
	}
	for _, st := range steps {
		g, err := st.do()
		if st.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), st.wantErr) {
				t.Fatalf("%s: want error %q, got %v (%v)", st.name, st.wantErr, err, g)
			}
			continue
		}
		if err != nil || g.IP.String() != st.wantIP || g.LeaseTime != st.wantLease {
			t.Fatalf("%s: got %v for %v, %v; want %s for %v", st.name, g.IP, g.LeaseTime, err, st.wantIP, st.wantLease)
		}
	}
	// A and B moved to the LAN: their relayed leases are given up, so each
	// holds one.
	for _, addr := range []string{"10.89.0.2", "10.89.0.50"} {
		if l := storedLease(t, b, addr); l.State != LeaseReleased {
			t.Fatalf("%s's old lease %s on the relayed subnet is %q, want released", l.MAC, addr, l.State)
		}
	}
	use := b.Use()
	if len(use) != 2 || use[0].Subnet != lan || use[0].Size != 4 || use[0].Active != 3 || use[1].Subnet != rack || use[1].Size != 3 || use[1].Active != 0 {
		t.Fatalf("pool use = %+v", use)
	}
	// Reloaded from the store, each lease is back in its pool.
	b.commit.Close()
	b.db.Close()
	again := openBooks(t, db, testPool(), relayed)
	if g, err := again.Offer(ctx, rack, macB, netip.Addr{}, ""); err != nil || g.IP != ip("10.89.0.50") {
		t.Fatalf("after a restart B was offered %v, %v", g.IP, err)
	}
}

func openBooks(t *testing.T, path string, pools ...Pool) *LeaseBook {
	t.Helper()
	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	commit := db.NewCommitter(64)
	t.Cleanup(func() { commit.Close(); db.Close() })
	b, err := NewLeaseBook(context.Background(), db, commit, pools, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func storedLease(t *testing.T, b *LeaseBook, addr string) store.Lease {
	t.Helper()
	l, err := b.db.Lease(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A DISCOVER from a client that holds its address bound (iPXE after the
// firmware, or a late copy of a DISCOVER answered after the REQUEST)
// leaves the binding as it is.
func TestOfferDoesNotUndoABinding(t *testing.T) {
	ctx := context.Background()
	b := openBook(t, filepath.Join(t.TempDir(), "db"), testPool())
	if _, err := b.Offer(ctx, lan, macA, netip.Addr{}, ""); err != nil {
		t.Fatal(err)
	}
	bound, err := b.Request(ctx, lan, macA, ip("10.88.0.100"), "", Selecting)
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.Offer(ctx, lan, macA, netip.Addr{}, "")
	if err != nil || again.IP != bound.IP {
		t.Fatalf("offered %v, %v; want %s again", again.IP, err, bound.IP)
	}
	if !b.Holds(macA) {
		t.Fatal("the offer undid the binding")
	}
	b.now = func() time.Time { return time.Now().Add(10 * time.Minute) } // past any offer's hold
	if !b.Holds(macA) {
		t.Fatal("the binding ended with the offer's hold")
	}
	if g, err := b.Offer(ctx, lan, macB, ip("10.88.0.100"), ""); err != nil || g.IP == bound.IP {
		t.Fatalf("another client was offered %v (%v), A's bound address", g.IP, err)
	}
}

// A bound lease asked for again within the cache threshold is answered as
// it stands, for the time it has left, and nothing is written; past it, or
// with another hostname, the lease is written again for its whole time.
func TestRenewalWithinTheCacheThresholdWritesNothing(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		threshold float64
		after     time.Duration
		hostname  string
		cached    bool
	}{
		{"a minute later", 0.25, time.Minute, "", true},
		{"just inside a quarter", 0.25, 14*time.Minute + 59*time.Second, "", true},
		{"past a quarter", 0.25, 16 * time.Minute, "", false},
		{"with another hostname", 0.25, time.Minute, "renamed", false},
		{"caching off", 0, time.Minute, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := testPool()
			pool.CacheThreshold = tc.threshold
			b := openBook(t, filepath.Join(t.TempDir(), "db"), pool)
			start := time.Now().Truncate(time.Second)
			b.now = func() time.Time { return start }
			if _, err := b.Offer(ctx, lan, macA, netip.Addr{}, ""); err != nil {
				t.Fatal(err)
			}
			first, err := b.Request(ctx, lan, macA, ip("10.88.0.100"), "", Selecting)
			if err != nil {
				t.Fatal(err)
			}
			written := storedLease(t, b, "10.88.0.100").ExpiresAt
			b.now = func() time.Time { return start.Add(tc.after) }
			again, err := b.Request(ctx, lan, macA, ip("10.88.0.100"), tc.hostname, InitReboot)
			if err != nil {
				t.Fatal(err)
			}
			stored := storedLease(t, b, "10.88.0.100").ExpiresAt
			if again.Cached != tc.cached {
				t.Errorf("answer marked cached: %v, want %v", again.Cached, tc.cached)
			}
			if tc.cached {
				if !stored.Equal(written) || again.LeaseTime != time.Hour-tc.after || !again.Expires.Equal(first.Expires) {
					t.Fatalf("cached answer: lease time %s, expires %s (stored %s, first %s); want the hour's rest, nothing written",
						again.LeaseTime, again.Expires, stored, first.Expires)
				}
				return
			}
			if stored.Equal(written) || again.LeaseTime != time.Hour {
				t.Fatalf("renewal: lease time %s, stored expiry %s (was %s); want a new hour, written", again.LeaseTime, stored, written)
			}
		})
	}
}

// A binding still on its way to the disk is not answered from the cache:
// the answer would promise what a crash could lose.
func TestBindingBeingWrittenIsNotCached(t *testing.T) {
	ctx := context.Background()
	pool := testPool()
	pool.CacheThreshold = 0.25
	b := openBook(t, filepath.Join(t.TempDir(), "db"), pool)
	start := time.Now().Truncate(time.Second)
	b.now = func() time.Time { return start }
	if _, err := b.Offer(ctx, lan, macA, netip.Addr{}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Request(ctx, lan, macA, ip("10.88.0.100"), "", Selecting); err != nil {
		t.Fatal(err)
	}
	b.now = func() time.Time { return start.Add(time.Minute) }
	b.mu.Lock()
	b.writing[ip("10.88.0.100")] = 1 // as another request's write would be
	p, _ := b.poolFor(lan)
	_, cached := b.cached(p, ip("10.88.0.100"), b.byIP[ip("10.88.0.100")], b.now())
	b.mu.Unlock()
	if cached {
		t.Fatal("a binding being written was answered from the cache")
	}
	b.mu.Lock()
	delete(b.writing, ip("10.88.0.100"))
	b.mu.Unlock()
	if g, err := b.Request(ctx, lan, macA, ip("10.88.0.100"), "", InitReboot); err != nil || g.LeaseTime != 59*time.Minute {
		t.Fatalf("once written, a renewal a minute later: %v, %v; want it from the cache (59m left)", g.LeaseTime, err)
	}
}

// A lease the journal refuses is not given: the request fails, and the
// image does not claim it, for this client or against another.
func TestLeaseTheJournalRefusesIsNotGiven(t *testing.T) {
	ctx := context.Background()
	b := openBook(t, filepath.Join(t.TempDir(), "db"), testPool())
	if _, err := b.Request(ctx, lan, macA, ip("10.88.0.100"), "", Selecting); err != nil {
		t.Fatal(err)
	}
	b.commit.Close()
	b.db.Close() // every write from now on fails, as on a dead disk
	cases := []struct {
		name string
		do   func() error
	}{
		{"a new binding", func() error {
			_, err := b.Request(ctx, lan, macB, ip("10.88.0.101"), "", Selecting)
			return err
		}},
		{"a client moving to another address", func() error {
			_, err := b.Request(ctx, lan, macA, ip("10.88.0.102"), "", Selecting)
			return err
		}},
		{"a release", func() error { return b.Release(ctx, macA, ip("10.88.0.100")) }},
		{"a decline", func() error { return b.Decline(ctx, macA, ip("10.88.0.100")) }},
	}
	for _, tc := range cases {
		if err := tc.do(); err == nil || !strings.Contains(err.Error(), "store lease of") {
			t.Fatalf("%s with the journal closed: %v, want the lease's error", tc.name, err)
		}
	}
	if b.Holds(macB) {
		t.Fatal("B holds a lease that was never written")
	}
	if got, ok := b.BoundTo(macA); !ok || got != ip("10.88.0.100") {
		t.Fatalf("A's lease is %v, %v after refused changes; want 10.88.0.100 as written", got, ok)
	}
	if _, ok := b.byIP[ip("10.88.0.102")]; ok {
		t.Fatal("the address A tried to move to is taken in memory")
	}
}
