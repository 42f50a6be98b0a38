package storm

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/pin/tftp/v3"

	"github.com/slipway/slipway/testbed"
)

// stage is one step of a machine's boot, timed on its own.
type stage int

const (
	stageFirmwareDHCP stage = iota
	stageLoader
	stageIPXEDHCP
	stageScript
	stageKernel
	stageInitrd
	stageCloudInit
	stageHeartbeats
	numStages
)

// stageNames are the stages' names in reports; stageColumns in CSV.
var (
	stageNames   = [numStages]string{"firmware DHCP", "loader over TFTP", "iPXE DHCP", "iPXE script", "kernel", "initrd", "cloud-init", "heartbeats"}
	stageColumns = [numStages]string{"dhcp_firmware", "tftp_loader", "dhcp_ipxe", "script", "kernel", "initrd", "cloud_init", "heartbeats"}
)

func (s stage) String() string { return stageNames[s] }

// outcome is what one machine's boot did.
type outcome struct {
	MAC        string
	IP         string
	PowerOn    time.Duration // since the storm began
	Took       [numStages]time.Duration
	Ready      time.Duration // power-on → ready; 0 if it never was
	Failed     stage         // where it failed, if Err is set
	Err        string
	DHCPResent int // DHCP messages sent again for want of an answer
	// BootRetries counts network boots started again from DHCP because the
	// loader could not be fetched.
	BootRetries int
	Bytes       int64
	Slow        bool
}

// machine is one simulated machine of the storm.
type machine struct {
	mac  net.HardwareAddr
	slow bool // reads its files at Config.SlowRate
}

// boot runs machine m from power-on to ready (or to the first failure).
func (s *storm) boot(ctx context.Context, m machine) (o outcome) {
	o = outcome{MAC: m.mac.String(), PowerOn: time.Since(s.began), Slow: m.slow}
	start := time.Now()
	// iPXE keeps its connection for the script, kernel and initrd, and
	// never closes it: the kernel it boots knows nothing of it, and the
	// server holds it until its idle timeout. The installer after it
	// (cloud-init, curl) opens a connection per request.
	var ipxe, installer testbed.Web
	var server, loader, kernel, initrd string
	var loaderServer net.IP
	steps := [numStages]func() error{
		stageFirmwareDHCP: func() error {
			ack, resent, err := s.link.dora(ctx, m.mac, testbed.FirmwareDHCP()...)
			o.DHCPResent += resent
			if err != nil {
				return err
			}
			if ack.BootFileName == "" {
				return fmt.Errorf("no boot file in the ACK for %s", ack.YourIPAddr)
			}
			if again := ack.YourIPAddr.String(); again != o.IP {
				o.IP = again
				if err := s.addrs.add(ack.YourIPAddr); err != nil {
					return err
				}
			}
			loader, loaderServer = ack.BootFileName, ack.ServerIPAddr
			return nil
		},
		stageLoader: func() error {
			n, err := s.tftpGet(loaderServer, loader, o.IP)
			o.Bytes += n
			return err
		},
		stageIPXEDHCP: func() error {
			ack, resent, err := s.link.dora(ctx, m.mac, testbed.IPXEDHCP()...)
			o.DHCPResent += resent
			if err != nil {
				return err
			}
			if got := ack.YourIPAddr.String(); got != o.IP {
				return fmt.Errorf("iPXE was given %s, the firmware %s", got, o.IP)
			}
			ipxe, installer = s.webFrom(ack.YourIPAddr, true), s.webFrom(ack.YourIPAddr, false)
			server = ack.BootFileName
			return nil
		},
		stageScript: func() error {
			script, err := ipxe.Get(ctx, server+"?mac="+o.MAC)
			if err != nil {
				return err
			}
			kernel, initrd = testbed.ParseIPXE(script)
			if kernel == "" {
				return fmt.Errorf("iPXE script without a kernel:\n%s", script)
			}
			server = testbed.ServerOf(server)
			return nil
		},
		stageKernel: func() error { return s.fetch(ctx, ipxe, kernel, m.slow, &o.Bytes) },
		stageInitrd: func() error {
			if initrd == "" {
				return nil
			}
			return s.fetch(ctx, ipxe, initrd, m.slow, &o.Bytes)
		},
		stageCloudInit: func() error {
			s.think(ctx, s.cfg.BootThink)
			_, err := installer.CloudInit(ctx, server, o.MAC)
			return err
		},
		stageHeartbeats: func() error { return installer.Heartbeats(ctx, server, o.MAC, s.cfg.StageThink) },
	}
	for st := stage(0); st < numStages; st++ {
		began := time.Now()
		err := steps[st]()
		o.Took[st] += time.Since(began)
		if err != nil && st == stageLoader && o.BootRetries < s.cfg.BootRetries {
			// Server firmware that cannot fetch its loader starts the
			// network boot again (HPE's network boot retry, Dell's PXE
			// retry count), from DHCP: the lease it holds comes back.
			o.BootRetries++
			st = stageFirmwareDHCP - 1
			continue
		}
		if err != nil {
			o.Failed, o.Err = stage(st), err.Error()
			s.progress.failed.Add(1)
			return o
		}
		if st != stageFirmwareDHCP || o.BootRetries == 0 {
			s.progress.done[st].Add(1) // a machine counts once per stage
		}
	}
	o.Ready = time.Since(start)
	return o
}

// tftpGet fetches the first-stage loader as UEFI firmware does: blksize
// 1468 (what fits an Ethernet frame), windowsize 4 (OVMF's), a request
// repeated every 4 s up to 6 times (EDK2's PXE), from the machine's own
// address.
func (s *storm) tftpGet(server net.IP, file, from string) (int64, error) {
	c, err := tftp.NewClient(net.JoinHostPort(server.String(), strconv.Itoa(s.cfg.TFTPPort)))
	if err != nil {
		return 0, err
	}
	if err := c.SetLocalAddr(from); err != nil {
		return 0, err
	}
	c.SetBlockSize(1468)
	c.SetWindowSize(4)
	c.SetTimeout(4 * time.Second)
	c.SetRetries(6)
	wt, err := c.Receive(file, "octet")
	if err != nil {
		return 0, fmt.Errorf("TFTP %s: %w", file, err)
	}
	return wt.WriteTo(io.Discard)
}

// webFrom is an HTTP client that connects from ip: iPXE's, which keeps
// its connection between requests (keepAlive), or the installer's, a
// connection per request.
func (s *storm) webFrom(ip net.IP, keepAlive bool) testbed.Web {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 30 * time.Second}
	if !keepAlive {
		// cloud-init retries its NoCloud seed ten times.
		return testbed.Web{Client: &http.Client{Transport: oneShot{dialer: dialer, limit: time.Minute}}, Retries: 10}
	}
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		MaxIdleConnsPerHost:   1,
		DisableCompression:    true,
		ResponseHeaderTimeout: time.Minute,
	}
	// iPXE asks again after a 503's Retry-After.
	return testbed.Web{Client: &http.Client{Transport: tr}, Retries: 30}
}

// fetch reads a boot file, at SlowRate for a slow machine, and counts its bytes.
func (s *storm) fetch(ctx context.Context, web testbed.Web, url string, slow bool, bytes *int64) error {
	var sink io.Writer = io.Discard
	if slow {
		sink = &throttled{rate: s.cfg.SlowRate}
	}
	buf := s.buffers.Get().(*[readBufferSize]byte)
	defer s.buffers.Put(buf)
	n, err := web.CopyBuffer(ctx, url, sink, buf[:])
	*bytes += n
	return err
}

// readBufferSize is how much a machine reads at once: a read call per
// 256 KiB rather than per 8 KiB left the storm's own CPU to the server.
const readBufferSize = 256 << 10

func (s *storm) think(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// throttled is a reader that takes its bytes at rate per second: a slow
// client, whose connection the server holds for longer.
type throttled struct{ rate int }

func (t *throttled) Write(p []byte) (int, error) {
	time.Sleep(time.Duration(len(p)) * time.Second / time.Duration(t.rate))
	return len(p), nil
}
