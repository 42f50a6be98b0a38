//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchOVMFFetchesItsLoader times UEFI firmware (Debian's OVMF, its
// own PXE client, in QEMU) fetching Debian's ipxe.efi over TFTP from
// Slipway and from tftpd-hpa, in alternating rounds on the same LAN with
// the same DHCP (Slipway's; for tftpd-hpa, Slipway's TFTP moves off port
// 69). The time is read from a packet capture (tcpdump) on the server's
// side: from the firmware's first read request for the loader (its size
// probe) to the last packet of the fetch. SLIPWAY_BENCH=1 only.
func TestBenchOVMFFetchesItsLoader(t *testing.T) {
	benchOnly(t, "bench-ovmf")
	requireCommands(t, map[string]string{"in.tftpd": "tftpd-hpa", "tcpdump": "tcpdump", "qemu-system-x86_64": "qemu-system-x86"})
	if _, err := os.Stat(ovmfCode); err != nil {
		missingPeer(t, "%s is missing: install Debian's ovmf", ovmfCode)
	}
	loader := filepath.Join(bootFiles(t), "ipxe.efi")
	rounds := envInt("SLIPWAY_BENCH_ROUNDS", 3)
	took := map[string][]time.Duration{}
	var table strings.Builder
	fmt.Fprintf(&table, "| round | server | probe + fetch | packets both ways |\n|---|---|---|---|\n")
	for round := range rounds {
		servers := []string{"slipway", "tftpd-hpa"}
		if round%2 == 1 {
			slices.Reverse(servers)
		}
		for _, server := range servers {
			// A subtest each: a LAN of its own, gone before the next.
			t.Run(fmt.Sprintf("%s-%d", server, round+1), func(t *testing.T) {
				f := fetchByOVMF(t, server, loader, fmt.Sprintf("52:54:00:e2:0f:%02x", round*2+len(took[server])))
				took[server] = append(took[server], f.took)
				fmt.Fprintf(&table, "| %d | %s | %.0f ms | %d |\n", round+1, server, f.took.Seconds()*1000, f.packets)
			})
		}
	}
	if len(took["slipway"]) == 0 || len(took["tftpd-hpa"]) == 0 {
		t.Fatal("no fetch measured")
	}
	s, p := middle(took["slipway"]), middle(took["tftpd-hpa"])
	fmt.Fprintf(&table, "\nmedian: slipway %.0f ms, tftpd-hpa %.0f ms: tftpd-hpa / slipway = %.2f (the fetch %.2f× as fast)\n",
		s.Seconds()*1000, p.Seconds()*1000, p.Seconds()/s.Seconds(), p.Seconds()/s.Seconds())
	t.Logf("OVMF fetching ipxe.efi (%d bytes) over TFTP:\n%s", fileSize(t, loader), table.String())
}

// ovmfFetch is one firmware's fetch of its loader, as the capture saw it.
type ovmfFetch struct {
	took    time.Duration
	packets int // UDP packets of the transfers, both ways: lock-step sends an ACK per block
}

// fetchByOVMF boots OVMF on a fresh LAN whose TFTP server is server, and
// returns the fetch of loader as the capture saw it.
func fetchByOVMF(t *testing.T, server, loader, mac string) ovmfFetch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	lan := newLAN(t, "10.88.0.1/24")
	tftpPort := 69
	if server != "slipway" {
		tftpPort = 6969 // port 69 is the peer's
	}
	config := strings.Replace(lanBase, "tftp: {root: TFTP_ROOT}", fmt.Sprintf("tftp: {root: TFTP_ROOT, port: %d}", tftpPort), 1)
	a := prepareServe(t, lan.Server, config+"dhcp: {range: {start: 10.88.0.100, end: 10.88.0.199}}\n", nil)
	copyFile(t, loader, filepath.Join(a.tftpRoot, "ipxe.efi"))
	waitReady(t, a)
	if server == "tftpd-hpa" {
		stop := startPeerProcess(t, lan.Server.Command(ctx, "in.tftpd", "--foreground", "--listen", "--address", "10.88.0.1:69",
			"--secure", "--blocksize", "1468", a.tftpRoot))
		defer stop()
	}
	capture := lan.Server.Command(ctx, "tcpdump", "-i", "lan0", "-n", "-tt", "-l", "udp")
	lines, err := capture.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	listening, _ := capture.StderrPipe()
	if err := capture.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { capture.Process.Kill(); capture.Wait() }()
	// tcpdump says "listening on lan0" once it captures (after a line
	// about its verbosity).
	started := bufio.NewScanner(listening)
	for started.Scan() && !strings.Contains(started.Text(), "listening on") {
	}
	tap, err := lan.AddTap(ctx, "tap1")
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-m", "512", "-smp", "1", "-display", "none", "-monitor", "none", "-no-reboot", "-serial", "null",
		"-netdev", "tap,id=n0,ifname=" + tap.Iface + ",script=no,downscript=no", "-machine", "pc,accel=tcg"}, uefiFirmware(t, mac)...)
	qemu := tap.Command(ctx, "qemu-system-x86_64", args...)
	if err := qemu.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { qemu.Process.Kill(); qemu.Wait() }()
	f, err := readFetch(bufio.NewScanner(lines))
	if err != nil {
		t.Fatalf("%s: %v\nslipway:\n%s", server, err, a.logs())
	}
	return f
}

// readFetch reads tcpdump's lines until the firmware, its loader fetched,
// asks DHCP again (iPXE starting), and measures the fetch: from the first
// read request for ipxe.efi to the last TFTP packet before that DHCP.
func readFetch(sc *bufio.Scanner) (ovmfFetch, error) {
	var f ovmfFetch
	var first, last float64
	for sc.Scan() {
		line := sc.Text()
		at, err := strconv.ParseFloat(strings.Fields(line + " 0")[0], 64)
		if err != nil || !strings.Contains(line, " IP ") {
			continue
		}
		dhcp := strings.Contains(line, "BOOTP/DHCP")
		switch {
		case first == 0 && strings.Contains(line, `RRQ "ipxe.efi"`):
			first, last = at, at
			f.packets++
		case first != 0 && dhcp:
			f.took = time.Duration((last - first) * float64(time.Second))
			return f, nil
		case first != 0:
			last = at
			f.packets++
		}
	}
	return f, fmt.Errorf("the capture ended before the firmware fetched its loader and asked DHCP again (%d packets seen)", f.packets)
}

func fileSize(t *testing.T, path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}
