//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/iana"
	"golang.org/x/sys/unix"
)

// TestNmapSeesTheOffer: nmap's broadcast-dhcp-discover, a client nobody
// here wrote, reads Slipway's offer on the wire.
func TestNmapSeesTheOffer(t *testing.T) {
	requireCommands(t, map[string]string{"nmap": "nmap"})
	lan := newLAN(t, "10.88.0.1/24")
	// nmap looks the interface up by its address, so it needs one; it still
	// sends the DISCOVER from 0.0.0.0 like a client without a lease.
	client, err := lan.AddHost(context.Background(), "nmap", "10.88.0.3/24")
	if err != nil {
		t.Fatal(err)
	}
	serveReady(t, lan, dhcpConfig)
	out, err := client.Run(context.Background(), "nmap", "-e", "eth0", "--script", "broadcast-dhcp-discover",
		"--script-args", "broadcast-dhcp-discover.timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"IP Offered: 10.88.0.1", "DHCP Message Type: DHCPOFFER", "Server Identifier: 10.88.0.1",
		"Subnet Mask: 255.255.255.0", "Router: 10.88.0.1", "Domain Name Server: 10.88.0.1", "Domain Name: lab.example",
		"IP Address Lease Time: 2h00m00s"} {
		if !strings.Contains(out, want) {
			t.Errorf("nmap does not show %q:\n%s", want, out)
		}
	}
}

// TestPXEAnswersPerArchitectureOnTheWire sends each kind of netboot
// DISCOVER from a raw socket in a client namespace, as firmware does.
func TestPXEAnswersPerArchitectureOnTheWire(t *testing.T) {
	lan := newLAN(t, "10.88.0.1/24")
	client, err := lan.AddHost(context.Background(), "pxe", "")
	if err != nil {
		t.Fatal(err)
	}
	serveReady(t, lan, dhcpConfig)

	tests := []struct {
		name, vendor, userClass string
		arch                    iana.Arch
		file, echo              string
	}{
		{"BIOS", "PXEClient:Arch:00000:UNDI:002001", "", iana.INTEL_X86PC, "undionly.kpxe", "PXEClient"},
		{"UEFI x64", "PXEClient:Arch:00007:UNDI:003016", "", iana.EFI_X86_64, "ipxe.efi", "PXEClient"},
		{"UEFI ARM64", "PXEClient:Arch:00011:UNDI:003000", "", iana.EFI_ARM64, "arm64/grubaa64.efi", "PXEClient"},
		{"x64 HTTP Boot", "HTTPClient:Arch:00016:UNDI:003001", "", iana.EFI_X86_64_HTTP, "http://10.88.0.1:8080/boot/ipxe.efi", "HTTPClient"},
		{"iPXE", "PXEClient:Arch:00000:UNDI:002001", "iPXE", iana.INTEL_X86PC, "http://10.88.0.1:8080/boot.ipxe", "PXEClient"},
	}
	inNamespace(t, client.Netns, func() {
		c, err := nclient4.New("eth0", nclient4.WithTimeout(3*time.Second), nclient4.WithRetry(2))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, tt := range tests {
			mods := []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClientArch(tt.arch)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier(tt.vendor))}
			if tt.userClass != "" {
				mods = append(mods, dhcpv4.WithUserClass(tt.userClass, false))
			}
			offer, err := c.DiscoverOffer(context.Background(), mods...)
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
				continue
			}
			if offer.BootFileName != tt.file || offer.ClassIdentifier() != tt.echo || !offer.ServerIPAddr.Equal(net.ParseIP("10.88.0.1")) {
				t.Errorf("%s: file %q, option 60 %q, siaddr %s", tt.name, offer.BootFileName, offer.ClassIdentifier(), offer.ServerIPAddr)
			}
		}
	})
}

// inNamespace runs fn on an OS thread moved into the named network
// namespace; sockets fn creates belong to that namespace for their life.
func inNamespace(t *testing.T, name string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	target, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			panic(fmt.Sprintf("cannot return to the test's network namespace: %v", err))
		}
	}()
	fn()
}
