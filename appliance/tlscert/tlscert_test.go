package tlscert

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A self-made certificate is made once and kept, made anew when the LAN is
// renumbered or it expired; its key is the owner's alone.
func TestSelfMadeCertificate(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	f := Files{Dir: dir, Addr: netip.MustParseAddr("10.88.0.1"), Hosts: []string{"slipway.lab"}}
	first, err := Load(f, now)
	if err != nil || !first.SelfMade {
		t.Fatal(err)
	}
	leaf := first.TLS.Leaf
	if err := leaf.VerifyHostname("10.88.0.1"); err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("slipway.lab"); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(leaf.Raw)
	if want := strings.ToUpper(hex.EncodeToString(sum[:])); strings.ReplaceAll(first.Fingerprint, ":", "") != want || len(first.Fingerprint) != 95 {
		t.Fatalf("fingerprint %s, want %s in pairs", first.Fingerprint, want)
	}
	if info, err := os.Stat(filepath.Join(dir, "tls.key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", info.Mode(), err)
	}
	again, err := Load(f, now)
	if err != nil || again.Fingerprint != first.Fingerprint {
		t.Fatalf("a restart made a new certificate: %v", err)
	}
	renumbered := f
	renumbered.Addr = netip.MustParseAddr("10.99.0.1")
	if c, err := Load(renumbered, now); err != nil || c.Fingerprint == first.Fingerprint || c.TLS.Leaf.VerifyHostname("10.99.0.1") != nil {
		t.Fatalf("a renumbered LAN kept a certificate that does not name it: %v", err)
	}
	if c, err := Load(renumbered, now.Add(11*365*24*time.Hour)); err != nil || c.TLS.Leaf.NotAfter.Before(now.Add(11*365*24*time.Hour)) {
		t.Fatalf("an expired certificate was kept: %v", err)
	}
}

// The operator's own certificate is used as given, and a broken one is an
// error that names the settings, never replaced by a self-made one.
func TestOperatorsCertificate(t *testing.T) {
	made := t.TempDir()
	own, err := Load(Files{Dir: made, Addr: netip.MustParseAddr("10.88.0.1")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f := Files{CertFile: filepath.Join(made, "tls.crt"), KeyFile: filepath.Join(made, "tls.key"), Dir: t.TempDir(), Addr: netip.MustParseAddr("10.99.0.1")}
	c, err := Load(f, time.Now())
	if err != nil || c.SelfMade || c.Fingerprint != own.Fingerprint {
		t.Fatalf("the operator's certificate: %+v, %v", c.Fingerprint, err)
	}
	other := t.TempDir()
	if _, err := Load(Files{Dir: other, Addr: netip.MustParseAddr("10.88.0.1")}, time.Now()); err != nil {
		t.Fatal(err)
	}
	f.KeyFile = filepath.Join(other, "tls.key")
	if _, err := Load(f, time.Now()); err == nil || !strings.Contains(err.Error(), "https.cert_file and https.key_file") {
		t.Fatalf("a key of another certificate: %v", err)
	}
	if entries, _ := os.ReadDir(f.Dir); len(entries) != 0 {
		t.Fatalf("a certificate was made beside the operator's broken one: %v", entries)
	}
}
