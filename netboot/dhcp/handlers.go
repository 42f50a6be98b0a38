package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/netboot/boot"
)

// checkRequest drops what is not a well-formed client request and starts
// the reply.
func (s *Server) checkRequest(_ context.Context, x *exchange) error {
	req := x.req
	if req.OpCode != dhcpv4.OpcodeBootRequest || req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6 {
		s.drop("not an Ethernet BOOTREQUEST", req)
		return nil
	}
	mac, err := domain.ParseMAC(req.ClientHWAddr.String())
	if err != nil {
		s.drop("bad hardware address", req)
		return nil
	}
	if hw := req.ClientHWAddr; hw[0]&1 == 1 || slices.Equal(hw, net.HardwareAddr{0, 0, 0, 0, 0, 0}) {
		// All-zero, broadcast or multicast: no NIC's address, no machine's.
		s.drop("not a unicast hardware address", req)
		return nil
	}
	x.mac = mac
	if !s.perClient.Allow(mac) {
		s.drop("past dhcp.requests_per_client", req)
		return nil
	}
	sn, link, ok := s.subnetFor(req)
	if !ok {
		s.drop("relayed from a subnet this server has no pool for", req)
		if s.unknownRelays.first(link) {
			s.log.Info("a DHCP relay forwards requests from a network this server has no pool for; they get no answer until it is added under dhcp.subnets",
				"network", link, "relay", addr(req.GatewayIPAddr), "mac", req.ClientHWAddr)
		}
		return nil
	}
	x.subnet = sn
	replyType, ok := replyTypes[x.kind]
	if !ok {
		if x.kind != dhcpv4.MessageTypeRelease && x.kind != dhcpv4.MessageTypeDecline {
			s.drop("message type this server does not answer", req)
			return nil
		}
	}
	reply := replyTo(req,
		dhcpv4.WithMessageType(replyType),
		dhcpv4.WithServerIP(s.cfg.ServerIP.AsSlice()),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.cfg.ServerIP.AsSlice())),
	)
	if relay := req.GetOneOption(dhcpv4.OptionRelayAgentInformation); relay != nil {
		reply.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionRelayAgentInformation, relay)) // RFC 3046: echo option 82
	}
	if sel := req.GetOneOption(dhcpv4.OptionSubnetSelection); sel != nil {
		reply.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionSubnetSelection, sel)) // RFC 3011 §3: returned as sent
	}
	x.reply = reply
	return nil
}

// replyTo is dhcpv4.NewReplyFromRequest without the random transaction id
// that it makes first and then replaces with the request's: reading the
// kernel's randomness, under a timer for its timeout, for every reply was a
// sixth of a busy server's work.
func replyTo(req *dhcpv4.DHCPv4, modifiers ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	d := &dhcpv4.DHCPv4{
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: net.IPv4zero,
		Options:       dhcpv4.Options{},
	}
	for _, m := range dhcpv4.PrependModifiers(modifiers,
		dhcpv4.WithReply(req),
		dhcpv4.WithGatewayIP(req.GatewayIPAddr),
		dhcpv4.WithOptionCopied(req, dhcpv4.OptionRelayAgentInformation),
		dhcpv4.WithOptionCopied(req, dhcpv4.OptionClientIdentifier), // RFC 6842
	) {
		m(d)
	}
	return d
}

var replyTypes = map[dhcpv4.MessageType]dhcpv4.MessageType{
	dhcpv4.MessageTypeDiscover: dhcpv4.MessageTypeOffer,
	dhcpv4.MessageTypeRequest:  dhcpv4.MessageTypeAck,
	dhcpv4.MessageTypeInform:   dhcpv4.MessageTypeAck,
}

// noteMachine tells the domain a netbooting MAC is on the LAN (which
// discovers new machines), unless the domain says to ignore it or does not
// discover it: then it gets no answer. Other clients (an installed OS, a
// laptop) are not made machines: they get an address, as from any DHCP
// server.
func (s *Server) noteMachine(ctx context.Context, x *exchange) error {
	if s.machines == nil || x.kind != dhcpv4.MessageTypeDiscover && x.kind != dhcpv4.MessageTypeRequest {
		return nil
	}
	if x.kind == dhcpv4.MessageTypeRequest {
		s.machines.Settle(ctx, x.mac) // its DISCOVER's machine is stored before the ACK
	}
	if plan := s.machines.BootPlan(x.mac); plan.Action == domain.BootIgnore {
		s.drop(plan.Why, x.req)
		x.reply = nil
		return nil
	}
	if !isNetboot(x.req.ClassIdentifier()) {
		return nil
	}
	seen := s.machines.Seen
	if x.kind == dhcpv4.MessageTypeDiscover {
		seen = s.machines.SeenSoon // the OFFER need not wait for the new machine's commit; the ACK does
	}
	_, err := seen(ctx, x.mac, domain.DoorDHCP)
	if errors.Is(err, domain.ErrDiscoveryRefused) {
		s.drop("not discovered (discovery policy)", x.req)
		x.reply = nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("note machine %s: %w", x.mac, err)
	}
	// The firmware's fingerprint is what a deployment keeps: an installed
	// OS's own DHCP client would overwrite it, and costs nothing here.
	s.machines.RecordFingerprint(x.mac, fingerprint(x.req, x.kind))
	return nil
}

// isNetboot says whether a vendor class is a netbooting firmware's (PXE
// or UEFI HTTP Boot).
func isNetboot(vendorClass string) bool {
	return strings.HasPrefix(vendorClass, "PXEClient") || strings.HasPrefix(vendorClass, "HTTPClient")
}

// userClass reads option 77 as RFC 3004 (length-prefixed classes, joined
// by commas) when it is that, else as the plain string iPXE sends.
func userClass(b []byte) string {
	var classes []string
	for rest := b; len(rest) > 0; {
		n := int(rest[0])
		if n == 0 || n >= len(rest) {
			return string(b)
		}
		classes = append(classes, string(rest[1:1+n]))
		rest = rest[1+n:]
	}
	return strings.Join(classes, ",")
}

// fingerprint is what a request says of the firmware that sent it. It is
// read for every request, so it copies the raw option bytes where it can
// instead of parsing them into lists.
func fingerprint(req *dhcpv4.DHCPv4, kind dhcpv4.MessageType) domain.DHCPFingerprint {
	fp := domain.DHCPFingerprint{MessageType: kind.String(), VendorClass: req.ClassIdentifier(),
		Hostname: req.HostName(), At: time.Now().UTC()}
	fp.UserClass = userClass(req.Options.Get(dhcpv4.OptionUserClassInformation))
	arch := req.Options.Get(dhcpv4.OptionClientSystemArchitectureType)
	for i := 0; i+1 < len(arch); i += 2 {
		fp.Arch = append(fp.Arch, int(arch[i])<<8|int(arch[i+1]))
	}
	fp.Params = slices.Clone(req.Options.Get(dhcpv4.OptionParameterRequestList))
	if size := req.Options.Get(dhcpv4.OptionMaximumDHCPMessageSize); len(size) == 2 {
		fp.MaxSize = int(size[0])<<8 | int(size[1])
	}
	if ip := req.GatewayIPAddr; ip != nil && !ip.IsUnspecified() {
		fp.Relay = ip.String()
	}
	return fp
}

// lease does the address part of each message type.
func (s *Server) lease(ctx context.Context, x *exchange) error {
	req := x.req
	switch x.kind {
	case dhcpv4.MessageTypeDiscover:
		g, err := s.leases.Offer(ctx, x.subnet.Prefix, x.mac, addr(req.RequestedIPAddress()), req.HostName())
		if errors.Is(err, domain.ErrPoolExhausted) {
			s.metrics.exhausted.Inc()
			s.log.Error("address pool exhausted: no offer made; widen the subnet's range or shorten its lease time", "subnet", x.subnet.Prefix, "mac", x.mac)
			x.reply = nil
			return nil
		}
		if err != nil {
			return err
		}
		s.grant(x, g)
	case dhcpv4.MessageTypeRequest:
		return s.request(ctx, x)
	case dhcpv4.MessageTypeRelease:
		x.reply = nil
		return s.leases.Release(ctx, x.mac, addr(req.ClientIPAddr))
	case dhcpv4.MessageTypeDecline:
		x.reply = nil
		return s.leases.Decline(ctx, x.mac, addr(req.RequestedIPAddress()))
	case dhcpv4.MessageTypeInform:
		x.reply.YourIPAddr = net.IPv4zero // RFC 2131: INFORM gets options, no address
	}
	return nil
}

// request handles the three forms of DHCPREQUEST (RFC 2131 4.3.2).
func (s *Server) request(ctx context.Context, x *exchange) error {
	req := x.req
	serverID := addr(req.ServerIdentifier())
	var ip netip.Addr
	var kind domain.RequestKind
	switch {
	case serverID.IsValid() && serverID != s.cfg.ServerIP:
		x.reply = nil // SELECTING another server's offer: ours lapses by itself
		return nil
	case serverID.IsValid():
		ip, kind = addr(req.RequestedIPAddress()), domain.Selecting
	case addr(req.RequestedIPAddress()).IsValid():
		ip, kind = addr(req.RequestedIPAddress()), domain.InitReboot
	default:
		ip, kind = addr(req.ClientIPAddr), domain.Renewing // or REBINDING
	}
	if !ip.IsValid() {
		s.drop("REQUEST names no address", req)
		x.reply = nil
		return nil
	}
	g, err := s.leases.Request(ctx, x.subnet.Prefix, x.mac, ip, req.HostName(), kind)
	if errors.Is(err, domain.ErrNoRecord) {
		s.log.Debug("INIT-REBOOT from a client with no lease here: silent, as RFC 2131 says", "mac", x.mac, "ip", ip)
		x.reply = nil
		return nil
	}
	var nak domain.NakError
	if errors.As(err, &nak) {
		s.log.Info("refused a request", "mac", x.mac, "ip", ip, "reason", nak.Reason)
		x.reply = replyTo(req,
			dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.cfg.ServerIP.AsSlice())),
			dhcpv4.WithOption(dhcpv4.OptMessage(nak.Reason)),
		)
		return nil
	}
	if err != nil {
		return err
	}
	s.grant(x, g)
	if g.Cached {
		s.metrics.cached.Inc()
	}
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return nil // a busy server would build the line below for nothing
	}
	attrs := []any{"mac", x.mac, "ip", g.IP, "hostname", g.Hostname, "until", g.Expires.Format("15:04:05"), "cached", g.Cached}
	if relay := addr(req.GatewayIPAddr); relay.IsValid() {
		attrs = append(attrs, "subnet", x.subnet.Prefix, "relay", relay)
	}
	s.log.Info("lease granted", attrs...)
	return nil
}

func (s *Server) grant(x *exchange, g domain.Grant) {
	r := x.reply
	r.YourIPAddr = g.IP.AsSlice()
	lease := g.LeaseTime
	r.UpdateOption(dhcpv4.OptIPAddressLeaseTime(lease))
	r.UpdateOption(dhcpv4.OptRenewTimeValue(lease / 2))
	r.UpdateOption(dhcpv4.OptRebindingTimeValue(lease * 7 / 8))
	if g.Hostname != "" {
		r.UpdateOption(dhcpv4.OptHostName(g.Hostname))
	}
}

// networkOptions adds what the LAN looks like; NAKs carry none.
func (s *Server) networkOptions(_ context.Context, x *exchange) error {
	r := x.reply
	if r.MessageType() == dhcpv4.MessageTypeNak {
		return nil
	}
	sn := x.subnet
	r.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(sn.Prefix.Bits(), 32)))
	if sn.Router.IsValid() {
		r.UpdateOption(dhcpv4.OptRouter(sn.Router.AsSlice()))
	}
	if len(sn.DNS) > 0 {
		r.UpdateOption(dhcpv4.OptDNS(ips(sn.DNS)...))
	}
	if len(sn.NTP) > 0 {
		r.UpdateOption(dhcpv4.OptNTPServers(ips(sn.NTP)...))
	}
	if sn.Domain != "" {
		r.UpdateOption(dhcpv4.OptDomainName(sn.Domain))
	}
	return nil
}

// bootOptions tells netboot clients what to load next.
func (s *Server) bootOptions(_ context.Context, x *exchange) error {
	r := x.reply
	if r.MessageType() == dhcpv4.MessageTypeNak {
		return nil
	}
	var arches []uint16
	for _, a := range x.req.ClientArch() {
		arches = append(arches, uint16(a))
	}
	d := boot.Decide(boot.Client{Arches: arches, VendorClass: x.req.ClassIdentifier(), UserClasses: x.req.UserClass()}, s.cfg.Boot)
	if d.Transport == boot.None {
		return nil
	}
	if s.machines != nil {
		// No boot file: the firmware goes on to its next boot entry, the disk.
		if plan := s.machines.BootPlan(x.mac); plan.Action != domain.BootInstall {
			s.log.Debug("no boot file", "mac", x.mac, "reason", plan.Why)
			return nil
		}
	}
	if d.VendorClass != "" {
		r.UpdateOption(dhcpv4.OptClassIdentifier(d.VendorClass))
	}
	r.BootFileName = d.File
	r.UpdateOption(dhcpv4.OptBootFileName(d.File))
	if d.Transport == boot.TFTP {
		r.UpdateOption(dhcpv4.OptTFTPServerName(s.cfg.ServerIP.String()))
	}
	if d.VendorClass == "PXEClient" && !d.IPXE {
		// Sub-option 6, PXE_DISCOVERY_CONTROL = 8: load the boot file named
		// here, no boot server discovery. UEFI (EDK2) PXE rejects an offer
		// that says PXEClient without it ("PXE-E16: No valid offer").
		r.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, []byte(pxeDiscoveryControl)))
	}
	if d.IPXE {
		// iPXE: option 175.176 (no-pxedhcp) stops it waiting for a ProxyDHCP answer.
		r.UpdateOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(175), []byte{176, 1, 1}))
	}
	s.log.Debug("boot answer", "mac", x.mac, "transport", d.Transport, "file", d.File, "reason", d.Reason)
	return nil
}

// onlyNetbootClients: a proxyDHCP server answers PXE and HTTP Boot clients
// only, and only their DISCOVERs and their REQUESTs to the boot server
// port; everything else is the other DHCP server's business.
func (s *Server) onlyNetbootClients(_ context.Context, x *exchange) error {
	netboot := isNetboot(x.req.ClassIdentifier())
	switch t := x.kind; {
	case !netboot:
		x.reply = nil // silently: plain clients are not ours in proxy mode
	case t != dhcpv4.MessageTypeDiscover && t != dhcpv4.MessageTypeRequest:
		x.reply = nil
	case t == dhcpv4.MessageTypeRequest && addr(x.req.ServerIdentifier()).IsValid() && addr(x.req.ServerIdentifier()) != s.cfg.ServerIP:
		x.reply = nil // a REQUEST to the address-giving server
	}
	return nil
}

// proxyAnswer shapes a proxyDHCP reply: no address and no lease, the
// PXE vendor options that tell firmware to load the boot file directly,
// and the client's UUID echoed (PXE spec 2.1, option 97).
func (s *Server) proxyAnswer(_ context.Context, x *exchange) error {
	r := x.reply
	r.YourIPAddr = net.IPv4zero
	if uuid := x.req.GetOneOption(dhcpv4.OptionClientMachineIdentifier); uuid != nil {
		r.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, uuid))
	}
	return nil
}

// pxeDiscoveryControl is option 43 with PXE sub-option 6 set to 8.
const pxeDiscoveryControl = "\x06\x01\x08\xff"

func (s *Server) drop(reason string, req *dhcpv4.DHCPv4) {
	s.metrics.dropped.WithLabelValues(reason).Inc()
	s.log.Debug("request dropped", "reason", reason, "type", req.MessageType(), "mac", req.ClientHWAddr)
}

func addr(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

func ips(as []netip.Addr) []net.IP {
	out := make([]net.IP, len(as))
	for i, a := range as {
		out[i] = a.AsSlice()
	}
	return out
}
