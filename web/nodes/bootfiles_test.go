package nodes

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/web"
)

func TestBootFilesWithRangesInsideTheRoot(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ipxe.efi"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("TOP-SECRET-CONTENT"), 0o600)
	os.Symlink(secret, filepath.Join(dir, "link"))
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	s, err := web.New(web.Config{Addr: netip.MustParseAddr("127.0.0.1")}, New(Config{BootRoot: root}))
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr().String()

	req, _ := http.NewRequest("GET", base+"/boot/ipxe.efi", nil)
	req.Header.Set("Range", "bytes=2-5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(body) != "2345" {
		t.Fatalf("range request: %d %q", resp.StatusCode, body)
	}
	for _, path := range []string{"/boot/link", "/boot/../../etc/passwd", "/boot/%2e%2e/secret", "/boot/", "/boot/missing"} {
		if code, body := get(t, base+path); code != 404 || strings.Contains(body, "TOP-SECRET") {
			t.Errorf("GET %s = %d %s", path, code, body)
		}
	}
}

// The file server's answers a boot loader or an operator's curl meets,
// over one keep-alive connection so that a reader reused after a range
// starts the next answer at the file's beginning.
func TestBootFileAnswers(t *testing.T) {
	dir := t.TempDir()
	big := make([]byte, 20000) // past fasthttp's small-file size: the reader it reuses
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	os.WriteFile(filepath.Join(dir, "vmlinuz"), big, 0o644)
	os.MkdirAll(filepath.Join(dir, "efi", "boot"), 0o755)
	os.WriteFile(filepath.Join(dir, "efi", "boot", "grubx64.efi"), []byte("grub"), 0o644)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	s, err := web.New(web.Config{Addr: netip.MustParseAddr("127.0.0.1")}, New(Config{BootRoot: root}))
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr().String()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	modified := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		method, path, header, value string
		code                        int
		body                        string
	}{
		{"GET", "/boot/vmlinuz", "Range", "bytes=100-109", 206, string(big[100:110])},
		{"GET", "/boot/vmlinuz", "Range", "bytes=-5", 206, string(big[len(big)-5:])},
		{"GET", "/boot/vmlinuz", "", "", 200, string(big)},
		{"GET", "/boot/vmlinuz", "Range", "bytes=19990-", 206, string(big[19990:])},
		{"GET", "/boot/vmlinuz", "Range", "bytes=30000-", 416, ""},
		{"GET", "/boot/vmlinuz", "If-Modified-Since", modified, 304, ""},
		{"HEAD", "/boot/vmlinuz", "", "", 200, ""},
		{"GET", "/boot/vmlinuz", "", "", 200, string(big)},
		{"GET", "/boot/efi/boot/grubx64.efi", "", "", 200, "grub"},
		{"GET", "/boot/efi", "", "", 404, ""},
		{"GET", "/boot/efi/", "", "", 404, ""},
		{"GET", "/boot/efi/boot/missing.efi", "", "", 404, ""},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		if tc.header != "" {
			req.Header.Set(tc.header, tc.value)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || (tc.code < 300 && string(body) != tc.body) {
			t.Errorf("%s %s %s: %s = %d, %d bytes; want %d, %d bytes", tc.method, tc.path, tc.header, tc.value, resp.StatusCode, len(body), tc.code, len(tc.body))
		}
		if tc.method == "HEAD" && resp.ContentLength != int64(len(big)) {
			t.Errorf("HEAD says %d bytes, want %d", resp.ContentLength, len(big))
		}
	}
}
