package nodes

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/testbed/testkit"
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
	base := serveBootRoot(t, dir)

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
	base := serveBootRoot(t, dir)
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

// shortFS opens its first files and then none: a system out of
// descriptors.
type shortFS struct {
	fs.FS
	opens, allowed int
}

// Stat needs no descriptor, as the real one's.
func (s *shortFS) Stat(name string) (fs.FileInfo, error) { return fs.Stat(s.FS, name) }

func (s *shortFS) Open(name string) (fs.File, error) {
	if s.opens++; s.opens > s.allowed {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EMFILE}
	}
	return s.FS.Open(name)
}

// A file the server holds open, that one machine is still reading, needs
// a descriptor more for a second machine's answer. Without one, the answer
// is "try again" (iPXE waits its Retry-After), never a 500 that ends the
// boot; a file never opened is likewise a 503, a missing one a 404.
func TestBootFileOutOfDescriptorsIsTryAgain(t *testing.T) {
	dir := t.TempDir()
	testkit.WriteRandomFile(t, filepath.Join(dir, "initrd"), 32<<20)
	os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("kernel"), 0o644)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	files := &shortFS{FS: web.RegularFiles(root), allowed: 2} // the cached file and one reader
	s, err := web.New(web.Config{Addr: netip.MustParseAddr("127.0.0.1")}, web.Mount{Name: "files",
		Routes: func(r fiber.Router, done <-chan struct{}) {
			r.Get("/boot/*", filesFrom(files, "/boot/", done))
		}})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Shutdown(context.Background())
	// The first machine asks for the initrd and reads nothing: its reader
	// stays busy while the send buffers are full.
	slow, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /boot/initrd HTTP/1.1\r\nHost: x\r\n\r\n")
	status, _ := bufio.NewReader(slow).ReadString('\n')
	if !strings.Contains(status, "200") {
		t.Fatalf("the first machine's initrd: %q", status)
	}
	base := "http://" + s.Addr().String()
	for path, want := range map[string]int{"/boot/initrd": 503, "/boot/vmlinuz": 503, "/boot/missing": 404} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || (want == 503 && resp.Header.Get("Retry-After") == "") {
			t.Errorf("GET %s out of descriptors: %d, Retry-After %q; want %d", path, resp.StatusCode, resp.Header.Get("Retry-After"), want)
		}
	}
}

// serveBootRoot serves dir as the boot files' root on a loopback port
// until the test ends, and says where.
func serveBootRoot(t *testing.T, dir string) string {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	s, err := web.New(web.Config{Addr: netip.MustParseAddr("127.0.0.1")}, New(Config{BootRoot: root}))
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return "http://" + s.Addr().String()
}

// A kernel replaced (written beside and renamed over, as a release is
// unpacked) is what the next boot gets within a second or two, though the
// file server keeps the old one open for the answers in between.
func TestReplacedBootFileIsServedSoon(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(kernel, []byte("old kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := serveBootRoot(t, dir)
	if code, body := get(t, base+"/boot/vmlinuz"); code != 200 || body != "old kernel" {
		t.Fatalf("before: %d %q", code, body)
	}
	if err := os.WriteFile(kernel+".new", []byte("the new kernel, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(kernel+".new", kernel); err != nil {
		t.Fatal(err)
	}
	testkit.WaitForWithin(t, 5*time.Second, "the new kernel served", func() bool {
		code, body := get(t, base+"/boot/vmlinuz")
		return code == 200 && body == "the new kernel, longer"
	})
}
