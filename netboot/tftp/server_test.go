package tftp

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
