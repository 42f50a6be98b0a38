package testbed

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DemoProfileCmdline is the command line of the demo's boot profile.
const DemoProfileCmdline = "console=ttyS0 ds=nocloud-net;s={{.ServerURL}}/cloud-init/ hostname={{.Hostname}}"

// SeedDemoFiles writes stand-ins for the boot files the simulated fleet
// fetches: an "ipxe.efi" in the TFTP root and a kernel and initrd under
// assets/demo. They are random bytes of realistic sizes, not bootable.
func SeedDemoFiles(tftpRoot, assetsDir string) error {
	files := map[string]int{
		filepath.Join(tftpRoot, "ipxe.efi"):            1 << 20,
		filepath.Join(assetsDir, "demo", "vmlinuz"):    8 << 20,
		filepath.Join(assetsDir, "demo", "initrd.img"): 4 << 20,
	}
	for path, size := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		data := make([]byte, size)
		rand.Read(data)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("demo file %s: %w", path, err)
		}
	}
	return os.WriteFile(filepath.Join(assetsDir, "demo", "README"),
		[]byte("Stand-ins written by `slipway demo` for its simulated fleet: random bytes, not a bootable kernel.\n"), 0o644)
}

// BootFleet boots n simulated nodes (MACs FleetMAC(0..n-1)) against a
// Slipway whose DHCP and TFTP listen on server, starting one every
// interval, and calls report as each finishes.
func BootFleet(ctx context.Context, server net.IP, dhcpPort, tftpPort, n int, interval time.Duration, report func(i int, r BootReport, err error)) {
	var wg sync.WaitGroup
	for i := range n {
		mac, _ := net.ParseMAC(FleetMAC(i))
		node := Node{MAC: mac, DHCP: &net.UDPAddr{IP: server, Port: dhcpPort}, TFTPPort: tftpPort}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := node.Boot(ctx)
			if ctx.Err() == nil {
				report(i, r, err)
			}
		}()
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-time.After(interval):
		}
	}
	wg.Wait()
}
