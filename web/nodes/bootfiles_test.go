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
