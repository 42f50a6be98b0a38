package testbed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/pin/tftp/v3"
)

// Node is a simulated netbooting machine: it speaks DHCP as UEFI PXE
// firmware would, fetches its first-stage loader over TFTP, asks DHCP again
// as iPXE, then fetches its iPXE script, kernel and initrd over HTTP. It
// talks unicast to the given addresses, so it works on loopback without
// root.
type Node struct {
	MAC      net.HardwareAddr
	DHCP     *net.UDPAddr // the server's DHCP port
	TFTPPort int
	Timeout  time.Duration // per DHCP exchange; 0 means 2s
	// Onboard, if set, has the node run its installer after the kernel:
	// cloud-init and heartbeats through every stage, StageDelay apart.
	Onboard    bool
	StageDelay time.Duration
	// BootActions, with Onboard, has the node run the boot actions its
	// user-data carries (RunBootActions) once it has onboarded.
	BootActions bool
}

// BootReport says what a simulated boot did.
type BootReport struct {
	IP          net.IP
	LoaderFile  string
	LoaderBytes int64
	ScriptURL   string
	KernelBytes int64
	InitrdBytes int64
	Onboarded   bool // cloud-init fetched and every stage reported
	UserData    string
	Actions     BootActionsRun
	Took        time.Duration
}

// Boot runs the whole netboot of one node.
func (n Node) Boot(ctx context.Context) (BootReport, error) {
	start := time.Now()
	var r BootReport
	ack, err := n.dora(ctx, FirmwareDHCP()...)
	if err != nil {
		return r, fmt.Errorf("firmware DHCP: %w", err)
	}
	r.IP, r.LoaderFile = ack.YourIPAddr, ack.BootFileName
	if r.LoaderFile == "" {
		return r, errors.New("firmware DHCP: no boot file offered")
	}
	if r.LoaderBytes, err = n.tftpGet(ack.ServerIPAddr, r.LoaderFile); err != nil {
		return r, fmt.Errorf("TFTP %s: %w", r.LoaderFile, err)
	}
	ack, err = n.dora(ctx, IPXEDHCP()...)
	if err != nil {
		return r, fmt.Errorf("iPXE DHCP: %w", err)
	}
	r.ScriptURL = ack.BootFileName
	web := Web{Client: http.DefaultClient}
	script, err := web.Get(ctx, r.ScriptURL+"?mac="+n.MAC.String())
	if err != nil {
		return r, fmt.Errorf("iPXE script: %w", err)
	}
	kernel, initrd := ParseIPXE(script)
	if kernel == "" {
		return r, fmt.Errorf("iPXE script has no kernel line:\n%s", script)
	}
	if r.KernelBytes, err = web.Copy(ctx, kernel, io.Discard); err != nil {
		return r, fmt.Errorf("kernel: %w", err)
	}
	if initrd != "" {
		if r.InitrdBytes, err = web.Copy(ctx, initrd, io.Discard); err != nil {
			return r, fmt.Errorf("initrd: %w", err)
		}
	}
	if n.Onboard {
		if r.UserData, err = Onboard(ctx, ServerOf(r.ScriptURL), n.MAC.String(), n.StageDelay); err != nil {
			return r, fmt.Errorf("onboarding: %w", err)
		}
		r.Onboarded = true
		if n.BootActions {
			if r.Actions, err = RunBootActions(ctx, r.UserData); err != nil {
				return r, fmt.Errorf("boot actions: %w", err)
			}
		}
	}
	r.Took = time.Since(start)
	return r, nil
}

// FirmwareDHCP is what x86_64 UEFI PXE firmware puts in its DHCP requests.
func FirmwareDHCP() []dhcpv4.Modifier {
	return []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
	}
}

// IPXEDHCP is what iPXE, loaded by that firmware, puts in its own.
func IPXEDHCP() []dhcpv4.Modifier {
	return append(FirmwareDHCP(), dhcpv4.WithUserClass("iPXE", false))
}

// dora runs DISCOVER, OFFER, REQUEST, ACK from a fresh UDP socket.
func (n Node) dora(ctx context.Context, mods ...dhcpv4.Modifier) (*dhcpv4.DHCPv4, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: n.DHCP.IP})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	d, err := dhcpv4.NewDiscovery(n.MAC, mods...)
	if err != nil {
		return nil, err
	}
	offer, err := n.exchange(ctx, conn, d, dhcpv4.MessageTypeOffer)
	if err != nil {
		return nil, err
	}
	req, err := dhcpv4.NewRequestFromOffer(offer, mods...)
	if err != nil {
		return nil, err
	}
	return n.exchange(ctx, conn, req, dhcpv4.MessageTypeAck)
}

func (n Node) exchange(ctx context.Context, conn *net.UDPConn, msg *dhcpv4.DHCPv4, want dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	timeout := n.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	buf := make([]byte, 1500)
	for attempt := 0; attempt < 3; attempt++ {
		if _, err := conn.WriteToUDP(msg.ToBytes(), n.DHCP); err != nil {
			return nil, err
		}
		conn.SetReadDeadline(time.Now().Add(timeout))
		for {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			k, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				break // timed out: send again
			}
			reply, err := dhcpv4.FromBytes(buf[:k])
			if err != nil || reply.TransactionID != msg.TransactionID {
				continue
			}
			if reply.MessageType() == dhcpv4.MessageTypeNak {
				return nil, fmt.Errorf("NAK: %s", reply.Message())
			}
			if reply.MessageType() == want {
				return reply, nil
			}
		}
	}
	return nil, fmt.Errorf("no %s after 3 tries", want)
}

func (n Node) tftpGet(server net.IP, file string) (int64, error) {
	c, err := tftp.NewClient(net.JoinHostPort(server.String(), fmt.Sprint(n.TFTPPort)))
	if err != nil {
		return 0, err
	}
	c.SetBlockSize(1468)
	c.SetTimeout(2 * time.Second)
	wt, err := c.Receive(file, "octet")
	if err != nil {
		return 0, err
	}
	return wt.WriteTo(io.Discard)
}

// Web is how a simulated machine speaks HTTP: through Client, which a
// storm's machines dial from their own leased addresses.
type Web struct {
	Client *http.Client
	// Retries is how many times a GET answered 503 with Retry-After is
	// asked again after the time it says, as iPXE does (and cloud-init,
	// which retries its NoCloud seed ten times); 0 takes the 503 as the
	// answer.
	Retries int
}

// Get reads url whole; an answer other than 200 is an error.
func (w Web) Get(ctx context.Context, url string) (string, error) {
	var b bytes.Buffer
	if _, err := w.Copy(ctx, url, &b); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Copy reads url into dst and says how many bytes it got.
func (w Web) Copy(ctx context.Context, url string, dst io.Writer) (int64, error) {
	return w.CopyBuffer(ctx, url, dst, nil)
}

// CopyBuffer is Copy reading through buf (if not nil) whatever dst is:
// io.Discard's own reads are 8 KiB, a read call each, and a storm's
// machines read gigabytes.
func (w Web) CopyBuffer(ctx context.Context, url string, dst io.Writer, buf []byte) (int64, error) {
	resp, err := w.get(ctx, url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		why, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return 0, fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(why))
	}
	if buf != nil {
		return io.CopyBuffer(struct{ io.Writer }{dst}, resp.Body, buf) // hides dst's ReadFrom
	}
	return io.Copy(dst, resp.Body)
}

// get asks for url, again after a 503's Retry-After up to w.Retries
// times.
func (w Web) get(ctx context.Context, url string) (*http.Response, error) {
	for try := 0; ; try++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := w.Client.Do(req)
		if err != nil {
			return nil, err
		}
		wait, retry := retryAfter(resp)
		if !retry || try >= w.Retries {
			return resp, nil
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// retryAfter is how long a 503 asks its client to wait, and whether it
// asks at all; a value that is not seconds waits 5 s, as iPXE does.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	v := resp.Header.Get("Retry-After")
	if resp.StatusCode != http.StatusServiceUnavailable || v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	return 5 * time.Second, true
}

// ParseIPXE finds the kernel and initrd URLs of an iPXE script.
func ParseIPXE(script string) (kernel, initrd string) {
	sc := bufio.NewScanner(strings.NewReader(script))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		// The image is the first argument that is not an option or an
		// option's value ("initrd --name initrd http://...").
		image := ""
		args := fields[1:]
		for i := 0; i < len(args) && image == ""; i++ {
			switch {
			case args[i] == "--name" || args[i] == "-n":
				i++ // skip the option's value
			case !strings.HasPrefix(args[i], "-"):
				image = args[i]
			}
		}
		switch fields[0] {
		case "kernel":
			kernel = image
		case "initrd":
			initrd = image
		}
	}
	return kernel, initrd
}
