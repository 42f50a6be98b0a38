//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed"
)

// craftScript sends malformed DHCP and TFTP packets with Scapy, Debian's
// packet crafter: DHCP with every field fuzzed, options cut short or
// claiming more bytes than they carry, bad magic cookies, relay agent
// options nested wrong; TFTP requests with fuzzed names, modes and
// options, and every opcode with garbage after it.
const craftScript = `
import random, sys
from scapy.all import *
conf.verb = 0
random.seed(int(sys.argv[1]))
iface, server = "eth0", "10.88.0.1"
mac = get_if_hwaddr(iface)
batch = []
def dhcp(payload, dst="255.255.255.255"):
    batch.append(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")/IP(src="0.0.0.0", dst=dst)/UDP(sport=68, dport=67)/payload)
def chaddr():
    return bytes(random.getrandbits(8) & 0xfe if i == 0 else random.getrandbits(8) for i in range(6)) + b"\0" * 10
sent = 0
for i in range(800):
    dhcp(fuzz(BOOTP(chaddr=chaddr()))/fuzz(DHCP(options=[("message-type", random.choice([1, 3, 7, 8]))]))); sent += 1
    raw_opts = bytes([random.choice([53, 60, 61, 77, 82, 93, 94, 97, 118, 255]), random.randrange(256)]) + random.randbytes(random.randrange(0, 8))
    dhcp(BOOTP(op=1, chaddr=chaddr(), options=b"c\x82Sc" + raw_opts)); sent += 1
    dhcp(BOOTP(op=1, chaddr=chaddr(), options=random.randbytes(random.randrange(0, 64)))); sent += 1
    dhcp(BOOTP(op=1, chaddr=chaddr(), giaddr=RandIP(), options=b"c\x82Sc\x35\x01\x01\x52" + bytes([random.randrange(256)]) + random.randbytes(random.randrange(0, 40)) + b"\xff")); sent += 1
    dhcp(Raw(random.randbytes(random.randrange(0, 600)))); sent += 1
sendp(batch, iface=iface)
batch = []
for i in range(2000):
    port = random.randrange(1024, 65535)
    pkt = random.choice([
        fuzz(TFTP()/TFTP_RRQ()),
        TFTP()/TFTP_RRQ(filename=random.choice([b"ipxe.efi", b"../../etc/shadow", b"grub/grub.cfg-01-" + random.randbytes(12), random.randbytes(40)]), mode=random.choice([b"octet", b"netascii", b"mail", random.randbytes(8)]))/TFTP_Options(options=[TFTP_Option(oname=random.choice([b"blksize", b"tsize", b"timeout", b"windowsize", random.randbytes(6)]), value=random.choice([b"0", b"-1", b"65536", b"99999999999999999999", random.randbytes(5)]))]),
        fuzz(TFTP()/TFTP_WRQ()),
        fuzz(TFTP()/TFTP_DATA()), fuzz(TFTP()/TFTP_ACK()), fuzz(TFTP()/TFTP_ERROR()), fuzz(TFTP()/TFTP_OACK()),
        Raw(random.randbytes(random.randrange(0, 1600))),
    ])
    batch.append(IP(dst=server)/UDP(sport=port, dport=69)/pkt); sent += 1
send(batch, iface=iface)
print("sent", sent)
`

// A packet crafter on the LAN sends thousands of malformed DHCP and TFTP
// packets; the server neither crashes nor wedges: afterwards Debian's
// dhclient still gets a lease and tftp-hpa still fetches a file.
func TestCraftedPacketsDoNotWedgeTheServer(t *testing.T) {
	requireCommands(t, map[string]string{"dhclient": "isc-dhcp-client", "tftp": "tftp-hpa"})
	if out, err := (testbed.Host{}).Run(context.Background(), debianPython, "-c", "import scapy.all"); err != nil {
		missingPeer(t, "Debian's Scapy is missing: apt-get install python3-scapy (make e2e-deps installs it): %s", out)
	}
	lan := newLAN(t, "10.88.0.1/24")
	a := serveReady(t, lan, dhcpConfig)
	if err := os.WriteFile(filepath.Join(a.tftpRoot, "ipxe.efi"), bytes.Repeat([]byte("i"), 70000), 0o644); err != nil {
		t.Fatal(err)
	}
	crafter, err := lan.AddHost(context.Background(), "crafter", "10.88.0.66/24")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "craft.py")
	if err := os.WriteFile(script, []byte(craftScript), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := crafter.Run(ctx, debianPython, script, "1")
	if err != nil {
		t.Fatalf("the packet crafter: %v\n%s", err, out)
	}
	t.Logf("Scapy %s malformed DHCP and TFTP packets in %s", strings.TrimSpace(out), time.Since(start).Round(time.Second))
	select {
	case err := <-a.done:
		t.Fatalf("slipway died under crafted packets: %v\n%s", err, a.logs())
	default:
	}
	client := newDHCPClient(t, lan, "after", "02:00:00:00:0c:01")
	if got := client.dhclient(t); !strings.HasPrefix(got["ip"], "10.88.0.1") {
		t.Fatalf("after the crafted packets dhclient got %v", got)
	}
	if out, err := crafter.Run(context.Background(), "tftp", "10.88.0.1", "-m", "binary", "-c", "get", "ipxe.efi", "/dev/null"); err != nil {
		t.Fatalf("after the crafted packets tftp-hpa: %v %s", err, out)
	}
	if strings.Contains(a.logs(), "panic") {
		t.Fatalf("a panic was logged:\n%s", a.logs())
	}
}

// debianPython is Debian's own interpreter, where Debian's Python packages
// (Scapy, paho) are installed, whatever python3 is first on the PATH.
const debianPython = "/usr/bin/python3"
