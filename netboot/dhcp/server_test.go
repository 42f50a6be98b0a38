package dhcp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/netboot/boot"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

var (
	serverIP = netip.MustParseAddr("10.88.0.1")
	clientA  = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x0a}
	clientB  = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x0b}
	peer     = &net.UDPAddr{IP: net.IPv4zero, Port: 68}
	// rackSubnet is served through a relay.
	rackSubnet = netip.MustParsePrefix("10.89.0.0/24")
)

// newTestServer is a Server whose chain runs against a real lease book on a
// real SQLite file; its socket is a loopback one nobody sends to.
// tune, if given, adjusts the configuration (mode, ignore_unknown).
func newTestServer(t testing.TB, tune ...func(*Config)) (*Server, *store.Store) {
	t.Helper()
	return newTestServerFor(t, domain.UnknownInstall, tune...)
}

// newTestServerFor is newTestServer with unknown machines under policy.
func newTestServerFor(t testing.TB, policy domain.UnknownPolicy, tune ...func(*Config)) (*Server, *store.Store) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	commit := db.NewCommitter(64)
	t.Cleanup(func() { commit.Close(); db.Close() })
	inv, err := domain.NewInventory(context.Background(), domain.InventoryConfig{DB: db, Commit: commit, Log: quiet, UnknownMachines: policy})
	if err != nil {
		t.Fatal(err)
	}
	book, err := domain.NewLeaseBook(context.Background(), db, commit, []domain.Pool{{
		Subnet: netip.MustParsePrefix("10.88.0.0/24"), ServerIP: serverIP,
		Start: netip.MustParseAddr("10.88.0.100"), End: netip.MustParseAddr("10.88.0.199"), LeaseTime: time.Hour,
		Reservations: map[domain.MAC]domain.Reservation{"52:54:00:00:00:0b": {IP: netip.MustParseAddr("10.88.0.20"), Hostname: "node-b"}},
	}, {
		Subnet: rackSubnet, Router: netip.MustParseAddr("10.89.0.1"),
		Start: netip.MustParseAddr("10.89.0.100"), End: netip.MustParseAddr("10.89.0.199"), LeaseTime: 2 * time.Hour,
	}}, inv, quiet)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Port: testkit.FreePort(t, "udp"), ServerIP: serverIP, Logger: quiet,
		Subnets: []Subnet{
			{Prefix: netip.MustParsePrefix("10.88.0.0/24"), Router: serverIP, DNS: []netip.Addr{serverIP}, Domain: "lab.example"},
			{Prefix: rackSubnet, Router: netip.MustParseAddr("10.89.0.1"), DNS: []netip.Addr{serverIP}, Domain: "rack.example"},
		},
		Boot: boot.Server{IP: serverIP, HTTPPort: 80, BootFiles: map[string]string{"bios": "undionly.kpxe", "uefi-x64": "ipxe.efi", "uefi-arm64": "arm64/ipxe.efi"}},
	}
	for _, f := range tune {
		f(&cfg)
	}
	s, err := New(cfg, book, inv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, db
}

func discover(t *testing.T, mac net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	d, err := dhcpv4.NewDiscovery(mac, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// pxe is what PXE firmware says of itself (option 60).
var pxe = dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001"))

func TestFourWayExchange(t *testing.T) {
	s, db := newTestServer(t)
	ctx := context.Background()
	offer, dest := s.Handle(ctx, discover(t, clientA, pxe), peer)
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("no OFFER: %v", offer)
	}
	if got := offer.YourIPAddr.String(); got != "10.88.0.100" {
		t.Fatalf("offered %s", got)
	}
	if dest.String() != "255.255.255.255:68" {
		t.Fatalf("OFFER sent to %s, want broadcast", dest)
	}
	checkOptions(t, offer)
	req, err := dhcpv4.NewRequestFromOffer(offer)
	if err != nil {
		t.Fatal(err)
	}
	ack, _ := s.Handle(ctx, req, peer)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || ack.YourIPAddr.String() != "10.88.0.100" {
		t.Fatalf("want ACK of 10.88.0.100, got %v", ack)
	}
	checkOptions(t, ack)
	l, err := db.Lease(ctx, "10.88.0.100")
	if err != nil || l.State != domain.LeaseBound || l.MAC != "52:54:00:00:00:0a" {
		t.Fatalf("stored lease = %+v, %v", l, err)
	}
	if _, err := db.MachineByMAC(ctx, "52:54:00:00:00:0a"); err != nil {
		t.Fatalf("unknown MAC was not discovered as a machine: %v", err)
	}

	// A client that is not netbooting (a laptop, an installed OS) gets an
	// address and is not made a machine.
	laptop := net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x00, 0x1a}
	if offer, _ := s.Handle(ctx, discover(t, laptop), peer); offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("a plain DHCP client got no OFFER: %v", offer)
	}
	if _, err := db.MachineByMAC(ctx, "52:54:00:00:00:1a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a plain DHCP client was made a machine: %v", err)
	}

	// Renewing: unicast REQUEST with ciaddr, answered by unicast.
	renew, err := dhcpv4.NewRenewFromAck(ack)
	if err != nil {
		t.Fatal(err)
	}
	renewAck, dest := s.Handle(ctx, renew, peer)
	if renewAck == nil || renewAck.MessageType() != dhcpv4.MessageTypeAck || dest.String() != "10.88.0.100:68" {
		t.Fatalf("renew: %v to %v", renewAck, dest)
	}

	// Release: no reply, lease marked released.
	rel, err := dhcpv4.NewReleaseFromACK(ack)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Handle(ctx, rel, peer); r != nil {
		t.Fatalf("RELEASE answered with %v", r)
	}
	if l, _ := db.Lease(ctx, "10.88.0.100"); l.State != domain.LeaseReleased {
		t.Fatalf("after RELEASE the lease is %s", l.State)
	}
}

func checkOptions(t *testing.T, r *dhcpv4.DHCPv4) {
	t.Helper()
	if got := net.IP(r.SubnetMask()).String(); got != "255.255.255.0" {
		t.Errorf("subnet mask = %s", got)
	}
	if got := r.ServerIdentifier().String(); got != "10.88.0.1" {
		t.Errorf("server id = %s", got)
	}
	if r.Router()[0].String() != "10.88.0.1" || r.DNS()[0].String() != "10.88.0.1" || r.DomainName() != "lab.example" {
		t.Errorf("router %v, dns %v, domain %q", r.Router(), r.DNS(), r.DomainName())
	}
	if r.IPAddressLeaseTime(0) != time.Hour || r.IPAddressRenewalTime(0) != 30*time.Minute || r.IPAddressRebindingTime(0) != 52*time.Minute+30*time.Second {
		t.Errorf("times = %v %v %v", r.IPAddressLeaseTime(0), r.IPAddressRenewalTime(0), r.IPAddressRebindingTime(0))
	}
}

func TestRequestsThatGetANak(t *testing.T) {
	s, _ := newTestServer(t)
	ctx := context.Background()
	// A holds .100.
	offer, _ := s.Handle(ctx, discover(t, clientA), peer)
	req, _ := dhcpv4.NewRequestFromOffer(offer)
	s.Handle(ctx, req, peer)

	tests := []struct {
		name string
		mac  net.HardwareAddr
		ip   string
	}{
		{"INIT-REBOOT with another client's address", net.HardwareAddr{2, 0, 0, 0, 0, 1}, "10.88.0.100"},
		{"INIT-REBOOT from another network", net.HardwareAddr{2, 0, 0, 0, 0, 2}, "192.168.7.9"},
		{"reserved client asking for another address", clientB, "10.88.0.150"},
		{"INIT-REBOOT of a bound client for another free address", clientA, "10.88.0.101"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := dhcpv4.New(dhcpv4.WithHwAddr(tt.mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
				dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(tt.ip))))
			if err != nil {
				t.Fatal(err)
			}
			nak, dest := s.Handle(ctx, r, peer)
			if nak == nil || nak.MessageType() != dhcpv4.MessageTypeNak || nak.YourIPAddr.String() != "0.0.0.0" {
				t.Fatalf("want NAK, got %v", nak)
			}
			if dest.String() != "255.255.255.255:68" || nak.Message() == "" {
				t.Fatalf("NAK to %v with message %q", dest, nak.Message())
			}
		})
	}
}

// RFC 2131 §4.3.2: an INIT-REBOOT from a client the server has no record
// of, for an address that may be its (free here), gets no answer.
func TestInitRebootOfAStrangerIsSilent(t *testing.T) {
	s, _ := newTestServer(t)
	r, err := dhcpv4.New(dhcpv4.WithHwAddr(net.HardwareAddr{2, 0, 0, 0, 0, 9}), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.88.0.120"))))
	if err != nil {
		t.Fatal(err)
	}
	if reply, _ := s.Handle(context.Background(), r, peer); reply != nil {
		t.Fatalf("answered %v", reply)
	}
}

func TestReservationGetsItsAddressAndHostname(t *testing.T) {
	s, _ := newTestServer(t)
	offer, _ := s.Handle(context.Background(), discover(t, clientB), peer)
	if offer.YourIPAddr.String() != "10.88.0.20" || offer.HostName() != "node-b" {
		t.Fatalf("offer %s %q", offer.YourIPAddr, offer.HostName())
	}
}

func TestSelectingAnotherServerIsSilent(t *testing.T) {
	s, _ := newTestServer(t)
	r, _ := dhcpv4.New(dhcpv4.WithHwAddr(clientA), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.88.0.254"))),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.88.0.100"))))
	if reply, _ := s.Handle(context.Background(), r, peer); reply != nil {
		t.Fatalf("answered a REQUEST meant for another server: %v", reply)
	}
}

func TestBootAnswers(t *testing.T) {
	s, _ := newTestServer(t)
	tests := []struct {
		name       string
		arch       iana.Arch
		vendor     string
		userClass  string
		file       string
		wantVendor string
	}{
		{"BIOS PXE", iana.INTEL_X86PC, "PXEClient:Arch:00000:UNDI:002001", "", "undionly.kpxe", "PXEClient"},
		{"UEFI x64 PXE", iana.EFI_X86_64, "PXEClient:Arch:00007:UNDI:003016", "", "ipxe.efi", "PXEClient"},
		{"ARM64 PXE", iana.EFI_ARM64, "PXEClient:Arch:00011:UNDI:003000", "", "arm64/ipxe.efi", "PXEClient"},
		{"x64 HTTP Boot", iana.EFI_X86_64_HTTP, "HTTPClient:Arch:00016:UNDI:003001", "", "http://10.88.0.1:80/boot/ipxe.efi", "HTTPClient"},
		{"iPXE", iana.INTEL_X86PC, "PXEClient:Arch:00000:UNDI:002001", "iPXE", "http://10.88.0.1:80/boot.ipxe", "PXEClient"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mods := []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClientArch(tt.arch)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier(tt.vendor))}
			if tt.userClass != "" {
				mods = append(mods, dhcpv4.WithUserClass(tt.userClass, false))
			}
			offer, _ := s.Handle(context.Background(), discover(t, net.HardwareAddr{2, 0, 0, 0, 1, byte(i)}, mods...), peer)
			if offer == nil {
				t.Fatal("no offer")
			}
			if offer.BootFileName != tt.file || offer.BootFileNameOption() != tt.file || offer.ClassIdentifier() != tt.wantVendor {
				t.Fatalf("file %q / option 67 %q / option 60 %q", offer.BootFileName, offer.BootFileNameOption(), offer.ClassIdentifier())
			}
			if !offer.ServerIPAddr.Equal(net.ParseIP("10.88.0.1")) {
				t.Errorf("siaddr = %s", offer.ServerIPAddr)
			}
			hasNoPXEDHCP := offer.GetOneOption(dhcpv4.GenericOptionCode(175)) != nil
			if hasNoPXEDHCP != (tt.userClass == "iPXE") {
				t.Errorf("option 175 present = %v", hasNoPXEDHCP)
			}
		})
	}
	plain, _ := s.Handle(context.Background(), discover(t, net.HardwareAddr{2, 0, 0, 0, 2, 1}), peer)
	if plain.BootFileName != "" || plain.ClassIdentifier() != "" {
		t.Fatalf("a plain client got boot options: %q %q", plain.BootFileName, plain.ClassIdentifier())
	}
}

func TestRelayedRequestGoesBackToTheRelayWithOption82(t *testing.T) {
	s, _ := newTestServer(t)
	agent := []byte{1, 4, 'p', 'o', 'r', 't'} // circuit-id sub-option
	d := discover(t, clientA, dhcpv4.WithRelay(net.ParseIP("10.88.0.254")),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRelayAgentInformation, agent)))
	offer, dest := s.Handle(context.Background(), d, peer)
	if offer == nil || dest.(*net.UDPAddr).IP.String() != "10.88.0.254" || dest.(*net.UDPAddr).Port != s.cfg.Port {
		t.Fatalf("relayed offer to %v", dest)
	}
	if got := offer.GetOneOption(dhcpv4.OptionRelayAgentInformation); string(got) != string(agent) {
		t.Fatalf("option 82 = %v, want %v", got, agent)
	}
	foreign := discover(t, clientA, dhcpv4.WithRelay(net.ParseIP("172.16.0.1")))
	if r, _ := s.Handle(context.Background(), foreign, peer); r != nil {
		t.Fatal("answered a relay from a subnet with no pool")
	}
}

func TestInformGetsOptionsWithoutAnAddress(t *testing.T) {
	s, _ := newTestServer(t)
	inf, err := dhcpv4.NewInform(clientA, net.ParseIP("10.88.0.50"))
	if err != nil {
		t.Fatal(err)
	}
	ack, dest := s.Handle(context.Background(), inf, peer)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || !ack.YourIPAddr.IsUnspecified() || dest.String() != "10.88.0.50:68" {
		t.Fatalf("INFORM: %v to %v", ack, dest)
	}
	if ack.IPAddressLeaseTime(0) != 0 {
		t.Errorf("INFORM reply carries a lease time")
	}
}

// FuzzHandle feeds arbitrary bytes through parsing and the whole chain: a
// malformed packet must be dropped, never crash the server.
func FuzzHandle(f *testing.F) {
	s, _ := newTestServer(f)
	d, _ := dhcpv4.NewDiscovery(clientA, dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_ARM64)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient")))
	f.Add(d.ToBytes())
	r, _ := dhcpv4.New(dhcpv4.WithHwAddr(clientB), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.88.0.5"))))
	f.Add(r.ToBytes())
	f.Add([]byte{1, 1, 6, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := dhcpv4.FromBytes(data)
		if err != nil {
			return
		}
		s.Handle(context.Background(), req, peer)
	})
}

func TestUnicastSourceIsAnsweredWhereItCameFrom(t *testing.T) {
	s, _ := newTestServer(t)
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40001}
	offer, dest := s.Handle(context.Background(), discover(t, clientA), from)
	if offer == nil || dest.String() != "127.0.0.1:40001" {
		t.Fatalf("reply to %v, want the sender", dest)
	}
}

func newProxyServer(t *testing.T) *Server {
	t.Helper()
	s, _ := newTestServer(t, func(c *Config) { c.Mode = ModeProxy })
	return s
}

func TestProxyModeGivesBootInformationOnly(t *testing.T) {
	s := newProxyServer(t)
	ctx := context.Background()
	uuid := append([]byte{0}, make([]byte, 16)...)
	pxe := discover(t, clientA, dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, uuid)))
	offer, _ := s.Handle(ctx, pxe, peer)
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("no proxy offer: %v", offer)
	}
	if !offer.YourIPAddr.IsUnspecified() || offer.IPAddressLeaseTime(0) != 0 || offer.SubnetMask() != nil {
		t.Fatalf("a proxy offer carries an address or lease: yiaddr %s", offer.YourIPAddr)
	}
	if offer.BootFileName != "undionly.kpxe" || offer.ClassIdentifier() != "PXEClient" {
		t.Fatalf("boot file %q, vendor %q", offer.BootFileName, offer.ClassIdentifier())
	}
	if got := offer.GetOneOption(dhcpv4.OptionVendorSpecificInformation); string(got) != string([]byte{6, 1, 8, 255}) {
		t.Fatalf("option 43 = %v", got)
	}
	if got := offer.GetOneOption(dhcpv4.OptionClientMachineIdentifier); string(got) != string(uuid) {
		t.Fatalf("option 97 not echoed: %v", got)
	}
	// A REQUEST to the boot server port (no server id, or ours) gets an ACK.
	req, _ := dhcpv4.New(dhcpv4.WithHwAddr(clientA), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithClientIP(net.ParseIP("10.88.0.123")), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)))
	ack, dest := s.Handle(ctx, req, &net.UDPAddr{IP: net.ParseIP("10.88.0.123"), Port: 68})
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || ack.BootFileName != "undionly.kpxe" || dest.String() != "10.88.0.123:68" {
		t.Fatalf("boot server REQUEST: %v to %v", ack, dest)
	}
	// Plain clients, and REQUESTs to the address-giving server, are not ours.
	if r, _ := s.Handle(ctx, discover(t, clientB), peer); r != nil {
		t.Fatal("proxy answered a plain DHCP client")
	}
	other, _ := dhcpv4.New(dhcpv4.WithHwAddr(clientA), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient")), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.88.0.254"))))
	if r, _ := s.Handle(ctx, other, peer); r != nil {
		t.Fatal("proxy answered a REQUEST meant for the other server")
	}
}

func TestIgnoreUnknownAnswersOnlyKnownMachinesAndDiscoversNone(t *testing.T) {
	s, db := newTestServerFor(t, domain.UnknownIgnore)
	ctx := context.Background()
	if r, _ := s.Handle(ctx, discover(t, clientA), peer); r != nil {
		t.Fatalf("an unknown MAC got %v", r.MessageType())
	}
	if _, err := db.MachineByMAC(ctx, "52:54:00:00:00:0a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an ignored MAC was recorded as a machine: %v", err)
	}
	// A machine the inventory knows (from the configuration, say) is answered.
	if _, err := s.machines.Seen(ctx, "52:54:00:00:00:0b", domain.DoorDHCP); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Handle(ctx, discover(t, clientB), peer); r == nil || r.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("a known MAC got no offer: %v", r)
	}
}

// A PXE REQUEST arriving on the proxy's boot server port while the server
// stops must be dropped, not sent on a closed queue (which panicked).
func TestProxyStopsCleanlyWithPacketsInFlight(t *testing.T) {
	loopback := netip.MustParseAddr("127.0.0.1")
	req, err := dhcpv4.New(dhcpv4.WithHwAddr(clientA), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000")))
	if err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		s, _ := newTestServer(t, func(c *Config) {
			c.Mode, c.ServerIP, c.ProxyPort = ModeProxy, loopback, testkit.FreePort(t, "udp")
		})
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- s.Serve(ctx) }()
		flood, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(s.cfg.ProxyPort))))
		if err != nil {
			t.Fatal(err)
		}
		stopFlood := make(chan struct{})
		flooded := make(chan struct{})
		go func() {
			defer close(flooded)
			for {
				select {
				case <-stopFlood:
					return
				default:
					_, _ = flood.Write(req.ToBytes())
				}
			}
		}()
		time.Sleep(time.Duration(round%5) * time.Millisecond) // stop at varied points of the flood
		cancel()
		if err := <-served; err != nil {
			t.Fatalf("round %d: Serve after cancel: %v", round, err)
		}
		close(stopFlood)
		<-flooded
		flood.Close()
	}
}

// Only a machine expected to install gets a boot file: a ready one gets
// its address and nothing to boot (its firmware goes on to the disk) until
// Provision arms it; a MAC discovered under the local policy likewise.
func TestBootFileOnlyForMachinesThatInstall(t *testing.T) {
	ctx := context.Background()
	pxe := func(mac net.HardwareAddr, userClass ...string) *dhcpv4.DHCPv4 {
		mods := []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)),
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016"))}
		for _, uc := range userClass {
			mods = append(mods, dhcpv4.WithUserClass(uc, false))
		}
		return discover(t, mac, mods...)
	}
	offer := func(s *Server, req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
		t.Helper()
		o, _ := s.Handle(ctx, req, peer)
		if o == nil || o.MessageType() != dhcpv4.MessageTypeOffer || o.YourIPAddr.IsUnspecified() {
			t.Fatalf("no address offered: %v", o)
		}
		return o
	}
	s, _ := newTestServer(t)
	inv := s.machines.(*domain.Inventory)
	if f := offer(s, pxe(clientA)).BootFileName; f != "ipxe.efi" {
		t.Fatalf("a new machine gets %q", f)
	}
	inv.Settle(ctx, "52:54:00:00:00:0a") // a DISCOVER's new machine is stored in the background
	id := domain.DiscoveredID("52:54:00:00:00:0a")
	for _, ev := range []domain.Event{domain.HeartbeatEvent(domain.StageInstall, domain.PhaseStarted, ""), domain.HeartbeatEvent(domain.StageComplete, domain.PhaseDone, "")} {
		if _, err := inv.Apply(ctx, id, ev); err != nil {
			t.Fatal(err)
		}
	}
	for _, req := range []*dhcpv4.DHCPv4{pxe(clientA), pxe(clientA, "iPXE")} {
		if o := offer(s, req); o.BootFileName != "" || o.BootFileNameOption() != "" {
			t.Fatalf("a ready machine was offered %q", o.BootFileName)
		}
	}
	if _, err := inv.Apply(ctx, id, domain.Event{Kind: domain.EventProvision, Cause: "test"}); err != nil {
		t.Fatal(err)
	}
	if f := offer(s, pxe(clientA)).BootFileName; f != "ipxe.efi" {
		t.Fatalf("a provisioned machine gets %q", f)
	}

	local, _ := newTestServerFor(t, domain.UnknownLocal)
	if o := offer(local, pxe(clientB)); o.BootFileName != "" {
		t.Fatalf("a MAC discovered under the local policy was offered %q", o.BootFileName)
	}
}

// What reading a request's fingerprint costs, beside the exchange it is
// part of (make bench compares it with nothing: it is a share of a DHCP
// exchange, which BENCHMARKS.md measures against Kea).
func BenchmarkFingerprint(b *testing.B) {
	d, err := dhcpv4.NewDiscovery(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1},
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
		dhcpv4.WithUserClass("iPXE", false))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		_ = fingerprint(d, d.MessageType())
	}
}

func TestFingerprint(t *testing.T) {
	d, err := dhcpv4.NewDiscovery(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1},
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
		dhcpv4.WithUserClass("iPXE", false), dhcpv4.WithOption(dhcpv4.OptHostName("n1")))
	if err != nil {
		t.Fatal(err)
	}
	fp := fingerprint(d, d.MessageType())
	if fp.MessageType != "DISCOVER" || fp.VendorClass != "PXEClient:Arch:00007:UNDI:003016" || fp.UserClass != "iPXE" ||
		len(fp.Arch) != 1 || fp.Arch[0] != 7 || fp.Hostname != "n1" || len(fp.Params) == 0 || fp.Relay != "" {
		t.Errorf("fingerprint %+v", fp)
	}
}

func TestUserClass(t *testing.T) {
	for _, tc := range []struct {
		raw  []byte
		want string
	}{
		{nil, ""},
		{[]byte("iPXE"), "iPXE"},
		{[]byte{4, 'i', 'P', 'X', 'E'}, "iPXE"},
		{[]byte{2, 'a', 'b', 1, 'c'}, "ab,c"},
		{[]byte{9, 'a'}, "\ta"}, // a length past the end: taken as it is
	} {
		if got := userClass(tc.raw); got != tc.want {
			t.Errorf("userClass(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

// Requests no NIC sends (an all-zero, broadcast or multicast chaddr) get no
// answer and make no machine; a hostname with control characters is made a
// valid one before it is stored or echoed.
func TestOddClientFields(t *testing.T) {
	s, db := newTestServer(t)
	ctx := context.Background()
	for _, hw := range []net.HardwareAddr{{0, 0, 0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x01, 0x00, 0x5e, 0, 0, 1}} {
		if reply, _ := s.Handle(ctx, discover(t, hw), peer); reply != nil {
			t.Errorf("chaddr %s answered: %v", hw, reply)
		}
	}
	if ms, _ := db.Machines(ctx, store.MachineFilter{Limit: 10}); len(ms) != 0 {
		t.Errorf("machines made: %+v", ms)
	}
	offer, _ := s.Handle(ctx, discover(t, clientA, dhcpv4.WithOption(dhcpv4.OptHostName("evil\x00host;\nrm -rf"))), peer)
	req, _ := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithOption(dhcpv4.OptHostName("evil\x00host;\nrm -rf")))
	ack, _ := s.Handle(ctx, req, peer)
	if ack == nil || ack.HostName() != "evil-host--rm--rf" {
		t.Fatalf("hostname echoed %q", ack.HostName())
	}
}

// A datagram bigger than 1,500 bytes (RFC 2131 allows more than the 576
// every client must send, up to the link's MTU) is read whole and answered.
func TestJumboRequestIsAnswered(t *testing.T) {
	loopback := netip.MustParseAddr("127.0.0.1")
	s, _ := newTestServer(t, func(c *Config) {
		c.Mode, c.ServerIP, c.ProxyPort = ModeProxy, loopback, testkit.FreePort(t, "udp")
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Serve(ctx) }()
	req, err := dhcpv4.New(dhcpv4.WithHwAddr(clientA), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(224), bytes.Repeat([]byte{'x'}, 250))),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(225), bytes.Repeat([]byte{'x'}, 250))),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(226), bytes.Repeat([]byte{'x'}, 250))),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(227), bytes.Repeat([]byte{'x'}, 250))),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(228), bytes.Repeat([]byte{'x'}, 250))),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(229), bytes.Repeat([]byte{'x'}, 250))))
	if err != nil {
		t.Fatal(err)
	}
	packet := req.ToBytes()
	if len(packet) <= 1500 {
		t.Fatalf("the test request is %d bytes", len(packet))
	}
	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(s.cfg.ProxyPort))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 65535)
	for try := 0; try < 50; try++ { // the server may not be listening yet
		_, _ = conn.Write(packet)
		_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := conn.Read(buf); err == nil {
			reply, err := dhcpv4.FromBytes(buf[:n])
			if err != nil || reply.MessageType() != dhcpv4.MessageTypeAck {
				t.Fatalf("reply %v, %v", reply, err)
			}
			return
		}
	}
	t.Fatalf("no answer to a %d-byte request", len(packet))
}

// TestRelayedSubnetIsChosenByTheRelay: each way a relay names its client's
// network picks that network's pool and options; the reply still goes to
// the relay.
func TestRelayedSubnetIsChosenByTheRelay(t *testing.T) {
	linkSelection := func(ip string) dhcpv4.Modifier { // RFC 3527: option 82, sub-option 5
		return dhcpv4.WithOption(dhcpv4.OptRelayAgentInfo(dhcpv4.OptGeneric(dhcpv4.LinkSelectionSubOption, net.ParseIP(ip).To4())))
	}
	subnetSelection := func(ip string) dhcpv4.Modifier { // RFC 3011: option 118
		return dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionSubnetSelection, net.ParseIP(ip).To4()))
	}
	tests := []struct {
		name       string
		mods       []dhcpv4.Modifier
		wantIP     string // "" for no answer
		wantRouter string
		wantDest   string // the relay, on the server port
	}{
		{"giaddr on the LAN", []dhcpv4.Modifier{dhcpv4.WithRelay(net.ParseIP("10.88.0.254"))}, "10.88.0.100", "10.88.0.1", "10.88.0.254"},
		{"giaddr on a relayed subnet", []dhcpv4.Modifier{dhcpv4.WithRelay(net.ParseIP("10.89.0.1"))}, "10.89.0.100", "10.89.0.1", "10.89.0.1"},
		{"link selection beats giaddr", []dhcpv4.Modifier{dhcpv4.WithRelay(net.ParseIP("10.88.0.254")), linkSelection("10.89.0.9")}, "10.89.0.100", "10.89.0.1", "10.88.0.254"},
		{"subnet selection beats giaddr", []dhcpv4.Modifier{dhcpv4.WithRelay(net.ParseIP("10.88.0.254")), subnetSelection("10.89.0.1")}, "10.89.0.100", "10.89.0.1", "10.88.0.254"},
		{"a network with no pool", []dhcpv4.Modifier{dhcpv4.WithRelay(net.ParseIP("172.16.0.1"))}, "", "", ""},
		{"link selection of a network with no pool", []dhcpv4.Modifier{dhcpv4.WithRelay(net.ParseIP("10.88.0.254")), linkSelection("172.16.0.9")}, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t)
			offer, dest := s.Handle(context.Background(), discover(t, clientA, tt.mods...), peer)
			if tt.wantIP == "" {
				if offer != nil {
					t.Fatalf("answered with %v", offer.YourIPAddr)
				}
				return
			}
			if offer == nil {
				t.Fatal("no offer")
			}
			routers := offer.Router()
			to := dest.(*net.UDPAddr)
			if offer.YourIPAddr.String() != tt.wantIP || len(routers) != 1 || routers[0].String() != tt.wantRouter || to.IP.String() != tt.wantDest || to.Port != s.cfg.Port {
				t.Fatalf("offered %v router %v to %v; want %s router %s to %s", offer.YourIPAddr, routers, dest, tt.wantIP, tt.wantRouter, tt.wantDest)
			}
			if got := offer.GetOneOption(dhcpv4.OptionSubnetSelection); !bytes.Equal(got, discover(t, clientA, tt.mods...).GetOneOption(dhcpv4.OptionSubnetSelection)) {
				t.Fatalf("option 118 answered as %v", got)
			}
		})
	}
}

// TestRelayedClientRenewsByUnicast: a relayed client renews straight to
// the server, without a relay: its ciaddr names its network.
func TestRelayedClientRenewsByUnicast(t *testing.T) {
	s, db := newTestServer(t)
	ctx := context.Background()
	offer, _ := s.Handle(ctx, discover(t, clientA, dhcpv4.WithRelay(net.ParseIP("10.89.0.1"))), peer)
	req, err := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithRelay(net.ParseIP("10.89.0.1")))
	if err != nil {
		t.Fatal(err)
	}
	ack, _ := s.Handle(ctx, req, peer)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || ack.DomainName() != "rack.example" || ack.IPAddressLeaseTime(0) != 2*time.Hour {
		t.Fatalf("relayed REQUEST answered %v", ack)
	}
	renew, err := dhcpv4.NewRenewFromAck(ack)
	if err != nil {
		t.Fatal(err)
	}
	renew.GatewayIPAddr = net.IPv4zero // unicast from the client itself
	again, dest := s.Handle(ctx, renew, &net.UDPAddr{IP: ack.YourIPAddr, Port: 68})
	if again == nil || again.MessageType() != dhcpv4.MessageTypeAck || again.YourIPAddr.String() != "10.89.0.100" || again.DomainName() != "rack.example" {
		t.Fatalf("renewal answered %v", again)
	}
	if dest.String() != "10.89.0.100:68" {
		t.Fatalf("renewal ACK sent to %v", dest)
	}
	if l, err := db.Lease(ctx, "10.89.0.100"); err != nil || l.State != domain.LeaseBound {
		t.Fatalf("stored lease %+v, %v", l, err)
	}
}

// TestUnknownRelayIsLoggedOnce: a relay from a network with no pool says
// how to fix it once, not per packet.
func TestUnknownRelayIsLoggedOnce(t *testing.T) {
	var logs bytes.Buffer
	s, _ := newTestServer(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	for range 3 {
		if r, _ := s.Handle(context.Background(), discover(t, clientA, dhcpv4.WithRelay(net.ParseIP("172.16.0.1"))), peer); r != nil {
			t.Fatal("answered")
		}
	}
	if n := strings.Count(logs.String(), "dhcp.subnets"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "network=172.16.0.1") {
		t.Fatalf("the log does not name the network:\n%s", logs.String())
	}
}

// A MAC asking faster than dhcp.requests_per_client is not answered past
// its burst; another MAC still is.
func TestRequestsPerClientAreBounded(t *testing.T) {
	s, _ := newTestServerFor(t, domain.UnknownInstall, func(c *Config) { c.ClientRate = 5 })
	ctx := context.Background()
	answered := 0
	for range 30 {
		if offer, _ := s.Handle(ctx, discover(t, clientA, pxe), peer); offer != nil {
			answered++
		}
	}
	if answered != 10 {
		t.Fatalf("%d of 30 DISCOVERs at once answered, want the burst of 10", answered)
	}
	if offer, _ := s.Handle(ctx, discover(t, net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x00, 0x2a}, pxe), peer); offer == nil {
		t.Fatal("another MAC was refused for the first one's flood")
	}
}
