//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

// TestRealTFTPClientsFetchByteIdentical: tftp-hpa, atftp (lock-step and
// with an RFC 7440 windowsize) and curl fetch a file that spans many
// blocks, byte for byte; a path out of the root fails.
func TestRealTFTPClientsFetchByteIdentical(t *testing.T) {
	requireCommands(t, map[string]string{"tftp": "tftp-hpa", "atftp": "atftp", "curl": "curl"})
	lan := newLAN(t, "10.88.0.1/24")
	client, err := lan.AddHost(context.Background(), "cli", "10.88.0.2/24")
	if err != nil {
		t.Fatal(err)
	}
	a := serveReady(t, lan, dhcpConfig)

	payload := make([]byte, 1<<20+123) // 1 MiB and a partial block
	rand.Read(payload)
	if err := os.MkdirAll(filepath.Join(a.tftpRoot, "efi"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.tftpRoot, "efi", "boot.efi"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(filepath.Dir(a.tftpRoot), "secret")
	os.WriteFile(secret, []byte("TOP-SECRET"), 0o600)

	dir := t.TempDir()
	fetchers := map[string]func(remote, local string) []string{
		"tftp-hpa": func(remote, local string) []string {
			return []string{"tftp", "-m", "binary", "10.88.0.1", "-c", "get", remote, local}
		},
		"atftp": func(remote, local string) []string {
			return []string{"atftp", "--option", "blksize 1468", "--option", "tsize 0", "-g", "-r", remote, "-l", local, "10.88.0.1"}
		},
		// RFC 7440: atftp sends the window's last ACK only.
		"atftp-windowsize": func(remote, local string) []string {
			return []string{"atftp", "--option", "blksize 1468", "--option", "windowsize 8", "-g", "-r", remote, "-l", local, "10.88.0.1"}
		},
		"curl": func(remote, local string) []string {
			return []string{"curl", "-fsS", "--tftp-blksize", "1468", "-o", local, "tftp://10.88.0.1/" + remote}
		},
	}
	for name, fetch := range fetchers {
		t.Run(name, func(t *testing.T) {
			local := filepath.Join(dir, name)
			args := fetch("efi/boot.efi", local)
			if out, err := client.Run(context.Background(), args[0], args[1:]...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			got, err := os.ReadFile(local)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("%s fetched %d bytes that differ from the %d served (%v)", name, len(got), len(payload), err)
			}
			escaped := filepath.Join(dir, name+"-escape")
			args = fetch("../secret", escaped)
			client.Run(context.Background(), args[0], args[1:]...)
			if data, _ := os.ReadFile(escaped); bytes.Contains(data, []byte("TOP-SECRET")) {
				t.Fatalf("%s fetched a file outside the TFTP root", name)
			}
		})
	}
	// Over HTTP the same file comes from /boot/, for UEFI HTTP Boot and iPXE.
	local := filepath.Join(dir, "http")
	if out, err := client.Run(context.Background(), "curl", "-fsS", "-o", local, lanURL+"/boot/efi/boot.efi"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got, _ := os.ReadFile(local); !bytes.Equal(got, payload) {
		t.Fatal("HTTP /boot/ served different bytes")
	}
}
