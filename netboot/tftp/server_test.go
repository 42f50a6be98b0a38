package tftp

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/netboot/limit"
	"github.com/slipway/slipway/netboot/udpbuf"
	"github.com/slipway/slipway/testbed/testkit"

	"github.com/pin/tftp/v3"
)

func TestCleanName(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"undionly.kpxe", "undionly.kpxe", false},
		{"/undionly.kpxe", "undionly.kpxe", false},
		{`\EFI\BOOT\grubx64.efi`, "EFI/BOOT/grubx64.efi", false},
		{"arm64//ipxe.efi", "arm64/ipxe.efi", false},
		{"./a/./b", "a/b", false},
		{"../etc/passwd", "", true},
		{"a/../../etc/passwd", "", true},
		{`..\secret`, "", true},
		{"/", "", true},
		{"", "", true},
		{"a\x00b", "", true},
	}
	for _, tt := range tests {
		got, err := CleanName(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("CleanName(%q) = %q, %v; want %q, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"a", "../x", `\EFI\BOOT\x`, "/a//b/./c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		clean, err := CleanName(name)
		if err != nil {
			return
		}
		if !filepath.IsLocal(clean) {
			t.Fatalf("CleanName(%q) = %q, which is not local to the root", name, clean)
		}
	})
}

func startServer(t *testing.T) (string, string) {
	t.Helper()
	root := t.TempDir()
	s, err := New(Config{Addr: netip.MustParseAddr("127.0.0.1"), Port: 0, Root: root, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(s.Shutdown)
	return root, s.Addr().String()
}

func TestServesFilesByteIdenticalAndRefusesEscapes(t *testing.T) {
	root, addr := startServer(t)
	payload := make([]byte, 3*MaxBlockSize+17) // crosses block boundaries, ends mid-block
	rand.Read(payload)
	if err := os.MkdirAll(filepath.Join(root, "arm64"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "arm64", "ipxe.efi"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("secret"), 0o600)
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}

	c, err := tftp.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetBlockSize(8192) // asks for more than the cap
	c.RequestTSize(true)
	wt, err := c.Receive("/arm64/ipxe.efi", "octet")
	if err != nil {
		t.Fatal(err)
	}
	if size, ok := wt.(tftp.IncomingTransfer).Size(); !ok || size != int64(len(payload)) {
		t.Errorf("tsize = %d, %v; want %d", size, ok, len(payload))
	}
	var got bytes.Buffer
	if _, err := wt.WriteTo(&got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), payload) {
		t.Fatal("received file differs from the one served")
	}

	for _, name := range []string{"../secret", "link", "missing.efi", "arm64"} {
		if _, err := c.Receive(name, "octet"); err == nil {
			t.Errorf("%q was served", name)
		}
	}
	if rf, err := c.Send("upload.bin", "octet"); err == nil {
		if _, err := rf.ReadFrom(strings.NewReader("x")); err == nil {
			t.Error("a write request was accepted")
		}
	}
	if _, err := os.Stat(filepath.Join(root, "upload.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a file was written into the TFTP root")
	}
}

// OVMF asks a file's size (tsize) and ends the transfer with an ERROR
// code 8 once it has the OACK: that is normal, and gets no ERROR back.
func TestSizeProbeEndedByTheClient(t *testing.T) {
	root, addr := startServer(t)
	if err := os.WriteFile(filepath.Join(root, "ipxe.efi"), make([]byte, 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	// Unconnected: the transfer answers from a port of its own.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	rrq := append([]byte{0, 1}, []byte("ipxe.efi\x00octet\x00tsize\x000\x00")...)
	if _, err := pc.WriteTo(rrq, mustUDPAddr(t, addr)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = pc.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, from, err := pc.ReadFrom(buf)
	if err != nil || n < 2 || buf[1] != 6 || !strings.Contains(string(buf[2:n]), "tsize\x005000") {
		t.Fatalf("want an OACK with tsize 5000, got %q, %v", buf[:n], err)
	}
	if _, err := pc.WriteTo(append([]byte{0, 5, 0, 8}, []byte("tsize probe\x00")...), from); err != nil {
		t.Fatal(err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _, err := pc.ReadFrom(buf); err == nil {
		t.Errorf("the server answered the client's ERROR with %q", buf[:n])
	}
}

func mustUDPAddr(t *testing.T, s string) *net.UDPAddr {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Errors carry RFC 1350's codes; blksize 8 is legal (RFC 2348).
func TestErrorCodesAndOptions(t *testing.T) {
	root, addr := startServer(t)
	if err := os.WriteFile(filepath.Join(root, "ipxe.efi"), make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	rq := func(op byte, parts ...string) []byte {
		return append([]byte{0, op}, []byte(strings.Join(parts, "\x00")+"\x00")...)
	}
	for _, tc := range []struct {
		name   string
		packet []byte
		want   []byte // the reply's first 4 bytes: opcode and error code (or OACK)
		says   string
	}{
		{"a file that is not there", rq(1, "nope.efi", "octet"), []byte{0, 5, 0, 1}, "nope.efi"},
		{"a path out of the root", rq(1, "../../etc/passwd", "octet"), []byte{0, 5, 0, 2}, "outside the TFTP root"},
		{"a write request", rq(2, "upload.bin", "octet"), []byte{0, 5, 0, 2}, "write requests"},
		{"an unknown mode", rq(1, "ipxe.efi", "mail"), []byte{0, 5, 0, 4}, `transfer mode "mail"`},
		{"blksize 8", rq(1, "ipxe.efi", "octet", "blksize", "8"), []byte{0, 6}, "blksize\x008"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			if _, err := pc.WriteTo(tc.packet, mustUDPAddr(t, addr)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			_ = pc.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, from, err := pc.ReadFrom(buf)
			if err != nil || n < len(tc.want) || !bytes.Equal(buf[:len(tc.want)], tc.want) || !strings.Contains(string(buf[:n]), tc.says) {
				t.Fatalf("reply %q, %v; want it to start %v and say %q", buf[:n], err, tc.want, tc.says)
			}
			if buf[1] == 6 { // OACK: end the transfer politely
				_, _ = pc.WriteTo(append([]byte{0, 5, 0, 8}, []byte("done\x00")...), from)
			}
		})
	}
}

// The profiles' assets are served under assets/, from their own
// directory, with the same confinement as the root.
func TestServesAssetsUnderTheirPrefix(t *testing.T) {
	root, assets := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(assets, "vmlinuz"), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(root, "vmlinuz"), []byte("root's"), 0o644)
	os.WriteFile(filepath.Join(filepath.Dir(assets), "beside-assets"), []byte("secret"), 0o600)
	c := serveWith(t, Config{Root: root, Assets: assets})
	for name, want := range map[string]string{"/assets/vmlinuz": "kernel", "vmlinuz": "root's", "assets/../beside-assets": "", "assets/missing": ""} {
		wt, err := c.Receive(name, "octet")
		if want == "" {
			if err == nil {
				t.Errorf("%s was served", name)
			}
			continue
		}
		var got bytes.Buffer
		if err == nil {
			_, err = wt.WriteTo(&got)
		}
		if err != nil || got.String() != want {
			t.Errorf("%s: %q, %v; want %q", name, got.String(), err, want)
		}
	}
}

// renderedFor renders one name, for one caller address only, and says
// who asked on asked.
type renderedFor struct {
	name  string
	from  netip.Addr
	asked chan netip.Addr
}

func (r renderedFor) Lookup(_ context.Context, name string, from domain.Caller) ([]byte, bool, error) {
	if name != r.name {
		return nil, false, nil
	}
	r.asked <- from.Addr
	if from.Addr != r.from {
		return nil, true, &domain.CallerRefusedError{MAC: "52:54:00:00:00:01", From: from.Addr}
	}
	return []byte("config"), true, nil
}

// A rendered file is asked for with the client's address, and a refusal is
// an access violation that says nothing of the machine.
func TestRenderedFilesGoToTheirCallerOnly(t *testing.T) {
	asked := make(chan netip.Addr, 8)
	c := serveWith(t, Config{Root: t.TempDir(),
		Rendered: renderedFor{name: "grub/grub.cfg-01-52-54-00-00-00-01", from: netip.MustParseAddr("10.88.0.50"), asked: asked}})
	_, err := c.Receive("grub/grub.cfg-01-52-54-00-00-00-01", "octet")
	if err == nil || !strings.Contains(err.Error(), "not this machine's file") {
		t.Fatalf("a stranger's fetch: %v", err)
	}
	if got := <-asked; got != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("the renderer was told the caller is %v", got)
	}
}

// One address gets its rate and its transfers at once; the box itself is
// not limited.
func TestAdmitBoundsEachAddress(t *testing.T) {
	s, err := New(Config{Addr: netip.MustParseAddr("127.0.0.1"), Root: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		ClientRate: 0.001, TransfersPerClient: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	s.rate = limit.NewRate[netip.Addr](0.001, 3, 16) // three requests, then none for the test's length
	node, other := netip.MustParseAddr("10.88.0.50"), netip.MustParseAddr("10.88.0.51")
	r1, err1 := s.admit(node)
	_, err2 := s.admit(node)
	_, err3 := s.admit(node)
	if err1 != nil || err2 != nil || err3 == nil || !strings.Contains(err3.Error(), "too many transfers at once") {
		t.Fatalf("transfers at once: %v %v %v", err1, err2, err3)
	}
	r1()
	if _, err := s.admit(node); err == nil || !strings.Contains(err.Error(), "slow down") {
		t.Fatalf("past the rate: %v", err)
	}
	if _, err := s.admit(other); err != nil {
		t.Fatalf("another address: %v", err)
	}
	for range 100 {
		if _, err := s.admit(netip.MustParseAddr("127.0.0.1")); err != nil {
			t.Fatalf("the box itself: %v", err)
		}
	}
}

// Whatever datagram a LAN host sends the server (a request with any name,
// mode and options, or any other bytes), it answers or drops it and goes
// on serving: a panic in its handling would end the fuzzing process.
func FuzzRequests(f *testing.F) {
	root := f.TempDir()
	os.WriteFile(filepath.Join(root, "ipxe.efi"), bytes.Repeat([]byte("x"), 3000), 0o644)
	s, err := New(Config{Addr: netip.MustParseAddr("127.0.0.1"), Root: root, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	// Transfers nobody acknowledges end quickly, so that they do not pile up.
	s.srv.SetTimeout(20 * time.Millisecond)
	s.srv.SetRetries(1)
	go s.Serve()
	f.Cleanup(s.Shutdown)
	rrq := func(parts ...string) []byte {
		return append([]byte{0, 1}, []byte(strings.Join(parts, "\x00")+"\x00")...)
	}
	f.Add(rrq("ipxe.efi", "octet"))
	f.Add(rrq("ipxe.efi", "octet", "blksize", "1468", "tsize", "0", "windowsize", "4"))
	f.Add(rrq("ipxe.efi", "netascii", "blksize", "-1", "timeout", "0"))
	f.Add(rrq("../../etc/passwd", "octet"))
	f.Add(rrq("grub/grub.cfg-01-52-54-00-00-00-01", "OCTET", "blksize", "99999999999999999999"))
	f.Add([]byte{0, 2, 'x', 0, 'o', 'c', 't', 'e', 't', 0})        // a write request
	f.Add([]byte{0, 5, 0, 1, 'b', 'a', 'd'})                       // an ERROR with no NUL
	f.Add([]byte{0, 6, 'b', 'l', 'k', 's', 'i', 'z', 'e', 0, '8'}) // an OACK to a server
	f.Add([]byte{0})
	addr := s.Addr().(*net.UDPAddr)
	f.Fuzz(func(t *testing.T, packet []byte) {
		conn, err := net.DialUDP("udp4", nil, addr)
		if err != nil {
			t.Skip(err)
		}
		defer conn.Close()
		conn.Write(packet)
		conn.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
		conn.Read(make([]byte, 1600))
	})
}

// serveWith serves cfg on loopback, quietly, and returns a client of it.
func serveWith(t *testing.T, cfg Config) *tftp.Client {
	t.Helper()
	cfg.Addr, cfg.Logger = netip.MustParseAddr("127.0.0.1"), slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(s.Shutdown)
	c, err := tftp.NewClient(s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Past tftp.max_transfers a request waits, unanswered, for a transfer to
// end; the client's repeats meanwhile are not answered (no second
// transfer starts), and it is served when the first ends. A request that
// finds no turn within the wait is dropped, not refused.
func TestRequestsWaitForATransfersTurn(t *testing.T) {
	root := t.TempDir()
	payload := make([]byte, 4*512) // blocks 1-4 and an empty 5th: no blksize is asked
	rand.Read(payload)
	if err := os.WriteFile(filepath.Join(root, "ipxe.efi"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := New(Config{Addr: netip.MustParseAddr("127.0.0.1"), Root: root, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: reg, MaxTransfers: 1})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(s.Shutdown)
	// The first client takes the only transfer and holds it: it reads
	// block 1 and does not acknowledge it yet.
	first, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	first.WriteTo(append([]byte{0, 1}, []byte("ipxe.efi\x00octet\x00")...), s.Addr())
	buf := make([]byte, 1500)
	_ = first.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, transfer, err := first.ReadFrom(buf)
	if err != nil || n < 4 || buf[1] != 3 {
		t.Fatalf("the first client's block 1: %q, %v", buf[:n], err)
	}
	// The second asks every 200 ms meanwhile.
	done := make(chan error, 1)
	go func() {
		c, _ := tftp.NewClient(s.Addr().String())
		c.SetTimeout(200 * time.Millisecond)
		c.SetRetries(20)
		c.SetBackoff(func(int) time.Duration { return 0 })
		wt, err := c.Receive("ipxe.efi", "octet")
		if err == nil {
			var got bytes.Buffer
			if _, err = wt.WriteTo(&got); err == nil && !bytes.Equal(got.Bytes(), payload) {
				err = errors.New("the file differs")
			}
		}
		done <- err
	}()
	testkit.WaitFor(t, "the second client's repeats", func() bool {
		return testutil.ToFloat64(s.metrics.transfers.WithLabelValues("repeat-while-waiting")) >= 2
	})
	select {
	case err := <-done:
		t.Fatalf("the second client finished while the first held the only transfer: %v", err)
	default:
	}
	// The first client finishes; the second is served.
	for block := byte(1); block <= 5; block++ {
		first.WriteTo([]byte{0, 4, 0, block}, transfer)
		if block < 5 {
			_ = first.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, _, err := first.ReadFrom(buf); err != nil {
				t.Fatalf("block %d: %v", block+1, err)
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("the second client: %v", err)
	}
	testkit.WaitFor(t, "the second transfer counted", func() bool {
		return testutil.ToFloat64(s.metrics.transfers.WithLabelValues("ok")) == 2
	})
	if n := testutil.ToFloat64(s.metrics.transfers.WithLabelValues("failed")); n != 0 {
		t.Fatalf("%v transfers failed: a repeat started a transfer of its own", n)
	}
	// Held past the wait: dropped.
	s.turnWait = 100 * time.Millisecond
	hold, _ := s.turns.Take(context.Background(), netip.MustParseAddrPort("10.0.0.1:1"), time.Second)
	defer hold()
	if _, err := s.takeTurn("ipxe.efi", "10.0.0.2:2", netip.MustParseAddrPort("10.0.0.2:2")); !errors.Is(err, tftp.ErrUnanswered) {
		t.Fatalf("no turn in time: %v, want the request left unanswered", err)
	}
}

// The listening socket holds a site's read requests, which come all at
// once: the kernel's default buffer dropped thousands in a 10,000-machine
// storm.
func TestListeningSocketHoldsASitesRequests(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN) to size a buffer past net.core.rmem_max")
	}
	s, err := New(Config{Addr: netip.MustParseAddr("127.0.0.1"), Root: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if got, err := udpbuf.Of(s.conn); err != nil || got < 2*udpbuf.Size {
		t.Fatalf("receive buffer %d bytes (%v); want %d", got, err, 2*udpbuf.Size)
	}
}

// A file that cannot be opened for want of descriptors is left
// unanswered (the firmware asks again), once warned of; one that is not
// there is "file not found".
func TestOpenFailuresAnswerAsTheyShould(t *testing.T) {
	var logs testkit.LockedBuffer
	s, err := New(Config{Addr: netip.MustParseAddr("127.0.0.1"), Root: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	short := &os.PathError{Op: "openat", Path: "ipxe.efi", Err: syscall.EMFILE}
	for range 3 {
		if err := s.openFailed("ipxe.efi", "10.0.0.2:2", "ipxe.efi", short); !errors.Is(err, tftp.ErrUnanswered) {
			t.Fatalf("short of descriptors: %v, want the request left unanswered", err)
		}
	}
	if n := strings.Count(logs.String(), "left unanswered"); n != 1 {
		t.Errorf("three shortages warned of %d times:\n%s", n, logs.String())
	}
	var te *tftp.Error
	if err := s.openFailed("nope.efi", "10.0.0.2:2", "nope.efi", fs.ErrNotExist); !errors.As(err, &te) || te.Code != tftp.ErrCodeFileNotFound {
		t.Errorf("a missing file: %v", err)
	}
}
