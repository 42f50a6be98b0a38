package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// LAN is an isolated Ethernet segment built from network namespaces: a
// switch namespace holding a bridge, a server namespace whose interface
// "lan0" carries the appliance's address, and any number of client
// namespaces each with an "eth0" on the bridge. Nothing in it can reach the
// host's networks or beyond; it needs root.
type LAN struct {
	prefix string
	Switch string // namespace of the bridge
	Server Host
	hosts  []string
	taps   int // AddTap's names for taps asked for without one
}

// Host is one namespace on the LAN.
type Host struct {
	Netns string
	Iface string
	CIDR  string // empty for a host that has no static address
}

// NewLAN builds a LAN whose server holds serverCIDR (e.g. 10.88.0.1/24).
// prefix keeps namespaces of concurrent runs apart; keep it short, as
// interface names are limited to 15 characters.
func NewLAN(ctx context.Context, prefix, serverCIDR string) (*LAN, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("building a LAN of network namespaces needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New(`the "ip" command is missing: install Debian's iproute2`)
	}
	l := &LAN{prefix: prefix, Switch: prefix + "-sw"}
	l.hosts = append(l.hosts, l.Switch) // first, so that Close removes it whatever fails below
	steps := [][]string{
		{"netns", "add", l.Switch},
		{"-n", l.Switch, "link", "add", "br0", "type", "bridge"},
		{"-n", l.Switch, "link", "set", "br0", "up"},
		{"-n", l.Switch, "link", "set", "lo", "up"},
	}
	if err := ipSteps(ctx, steps); err != nil {
		l.Close()
		return nil, err
	}
	server, err := l.attach(ctx, "srv", "lan0", serverCIDR)
	if err != nil {
		l.Close()
		return nil, err
	}
	l.Server = server
	return l, nil
}

// AddHost plugs a new namespace into the LAN with interface eth0 and, if
// cidr is not empty, a static address.
func (l *LAN) AddHost(ctx context.Context, name, cidr string) (Host, error) {
	return l.attach(ctx, name, "eth0", cidr)
}

func (l *LAN) attach(ctx context.Context, name, iface, cidr string) (Host, error) {
	h := Host{Netns: l.prefix + "-" + name, Iface: iface, CIDR: cidr}
	peer := fmt.Sprintf("%s-%d", name, len(l.hosts))
	if len(peer) > 15 {
		return h, fmt.Errorf("host name %q is too long for an interface name", name)
	}
	steps := [][]string{
		{"netns", "add", h.Netns},
		{"-n", l.Switch, "link", "add", peer, "type", "veth", "peer", "name", iface, "netns", h.Netns},
		{"-n", l.Switch, "link", "set", peer, "master", "br0"},
		{"-n", l.Switch, "link", "set", peer, "up"},
		{"-n", h.Netns, "link", "set", "lo", "up"},
		{"-n", h.Netns, "link", "set", iface, "up"},
	}
	if cidr != "" {
		steps = append(steps, []string{"-n", h.Netns, "addr", "add", cidr, "dev", iface})
	}
	l.hosts = append(l.hosts, h.Netns)
	return h, ipSteps(ctx, steps)
}

// Command prepares name args... to run inside host h's namespace; the zero
// Host is this machine itself (loopback tests).
func (h Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if h.Netns == "" {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Netns, name}, args...)...)
}

// Run runs a command in h's namespace and returns its combined output.
func (h Host) Run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), h.Netns, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Close deletes every namespace of the LAN, and with them their interfaces.
func (l *LAN) Close() error {
	var errs []error
	for i := len(l.hosts) - 1; i >= 0; i-- {
		if out, err := exec.Command("ip", "netns", "del", l.hosts[i]).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %w: %s", l.hosts[i], err, out))
		}
	}
	l.hosts = nil
	return errors.Join(errs...)
}

func ipSteps(ctx context.Context, steps [][]string) error {
	for _, args := range steps {
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// AddTap creates a tap device on the LAN's bridge, for a virtual machine
// (QEMU -netdev tap) run in the switch namespace; an empty name is the
// LAN's next unused one (a name taken by an earlier tap of the LAN, still
// held by a QEMU that has not quite exited, is refused as busy).
func (l *LAN) AddTap(ctx context.Context, name string) (Host, error) {
	if name == "" {
		l.taps++
		name = fmt.Sprintf("tapvm%d", l.taps)
	}
	steps := [][]string{
		{"-n", l.Switch, "tuntap", "add", "dev", name, "mode", "tap"},
		{"-n", l.Switch, "link", "set", name, "master", "br0"},
		{"-n", l.Switch, "link", "set", name, "up"},
	}
	return Host{Netns: l.Switch, Iface: name}, ipSteps(ctx, steps)
}

// AddRoutedSubnet gives router (a host on the LAN) a second interface,
// "eth1" with routerCIDR, cabled to a new namespace name whose "eth0" has
// no address: a network beyond the LAN that router forwards to, as a
// rack's subnet behind its switch's DHCP relay is.
func (l *LAN) AddRoutedSubnet(ctx context.Context, router Host, name, routerCIDR string) (Host, error) {
	h := Host{Netns: l.prefix + "-" + name, Iface: "eth0"}
	l.hosts = append(l.hosts, h.Netns)
	steps := [][]string{
		{"netns", "add", h.Netns},
		{"-n", router.Netns, "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", h.Netns},
		{"-n", router.Netns, "addr", "add", routerCIDR, "dev", "eth1"},
		{"-n", router.Netns, "link", "set", "eth1", "up"},
		{"-n", h.Netns, "link", "set", "lo", "up"},
		{"-n", h.Netns, "link", "set", "eth0", "up"},
	}
	if err := ipSteps(ctx, steps); err != nil {
		return h, err
	}
	if _, err := router.Run(ctx, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		return h, err
	}
	return h, nil
}
