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

// DemoUserData is the demo profile's cloud-init template: what a real
// installer would get, reporting its progress by heartbeat.
const DemoUserData = `#cloud-config
# Slipway demo profile: {{.Profile}} for {{.MachineID}} ({{.MAC}})
hostname: {{.Hostname}}
preserve_hostname: false
ssh_pwauth: false
packages:
  - openssh-server
write_files:
  - path: /etc/slipway/machine
    content: |
      machine_id={{.MachineID}}
      server={{.ServerURL}}
runcmd:
  - |
    curl -fsS -X POST -H 'Content-Type: application/json' -H 'X-Slipway-Token: {{.Token}}' -d '{"mac":"{{.MAC}}","stage":"complete","phase":"done"}' {{.ServerURL}}/heartbeat
`

// SeedDemoFiles writes stand-ins for the boot files the simulated fleet
// fetches: an "ipxe.efi" in the TFTP root and a kernel and initrd under
// assets/demo (random bytes of realistic sizes, not bootable), and the demo
// profile's cloud-init template.
func SeedDemoFiles(tftpRoot, assetsDir, templatesDir string) error {
	if err := os.MkdirAll(templatesDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(templatesDir, "demo.yaml"), []byte(DemoUserData), 0o644); err != nil {
		return fmt.Errorf("demo template: %w", err)
	}
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
// interval, and calls report as each finishes, one call at a time. Each
// node is a copy of like with its MAC and addresses filled in.
func BootFleet(ctx context.Context, server net.IP, dhcpPort, tftpPort, n int, interval time.Duration, like Node, report func(i int, r BootReport, err error)) {
	var wg sync.WaitGroup
	var reporting sync.Mutex
	for i := range n {
		node := like
		node.MAC, _ = net.ParseMAC(FleetMAC(i))
		node.DHCP, node.TFTPPort = &net.UDPAddr{IP: server, Port: dhcpPort}, tftpPort
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := node.Boot(ctx)
			if ctx.Err() == nil {
				reporting.Lock()
				defer reporting.Unlock()
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
