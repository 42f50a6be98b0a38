package testkit

import (
	"archive/tar"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Signer is an OpenPGP key made by gpg, the tool operators sign releases
// with, in a keyring of its own.
type Signer struct {
	home string
	// PublicKey is the armored public key's file (for usm.trusted_keys).
	PublicKey   string
	Fingerprint string
}

// NewSigner makes an ed25519 signing key with gpg; the test skips (fails in
// CI) without gpg.
func NewSigner(t testing.TB, name string) *Signer {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		MissingPeer(t, "gpg is not installed: apt-get install gnupg (make e2e-deps)")
	}
	// gpg's agent socket must fit a Unix socket path: a short home.
	home, err := os.MkdirTemp("", "gpg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		_ = os.RemoveAll(home)
	})
	s := &Signer{home: home, PublicKey: filepath.Join(t.TempDir(), name+".asc")}
	s.gpg(t, "--quick-generate-key", "--passphrase", "", name+" <"+name+"@slipway.test>", "ed25519", "sign", "never")
	s.gpg(t, "--armor", "--output", s.PublicKey, "--export", name)
	for _, line := range strings.Split(s.gpg(t, "--with-colons", "--fingerprint", name), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && s.Fingerprint == "" {
			s.Fingerprint = f[9]
		}
	}
	return s
}

func (s *Signer) gpg(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("gpg", append([]string{"--homedir", s.home, "--batch", "--pinentry-mode", "loopback", "--yes"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Sign writes file's detached signature to sig (armored when sig ends in
// .asc) and returns sig.
func (s *Signer) Sign(t testing.TB, file, sig string) string {
	t.Helper()
	args := []string{"--output", sig, "--detach-sign"}
	if strings.HasSuffix(sig, ".asc") {
		args = append([]string{"--armor"}, args...)
	}
	s.gpg(t, append(args, file)...)
	return sig
}

// ReleaseArchive writes a gzipped tar of files (path → content) to dir/name
// and returns its path.
func ReleaseArchive(t testing.TB, dir, name string, files map[string]string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// ReleaseFiles are a small release's files: its manifest and boot files.
func ReleaseFiles(id, version string) map[string]string {
	return map[string]string{
		"release.yaml": "release_id: " + id + "\nsw_version: " + version + "\nsummary: " + id + "\ndescription: a test release\n" +
			"packages: [slipway-agent]\nboot:\n  kernel: boot/vmlinuz\n  initrd: boot/initrd.img\n  cmdline: console=ttyS0 release=" + id + "\n",
		"boot/vmlinuz":    "kernel of " + id + strings.Repeat("k", 4096),
		"boot/initrd.img": "initrd of " + id + strings.Repeat("i", 8192),
	}
}

// ReleaseISO writes files (path → content) into an ISO 9660 image with
// Rock Ridge names, made by xorriso as an operator would, at dir/name; the
// test skips (fails in CI) without xorriso. links adds symbolic links
// (path → target).
func ReleaseISO(t testing.TB, dir, name string, files, links map[string]string) string {
	t.Helper()
	if _, err := exec.LookPath("xorriso"); err != nil {
		MissingPeer(t, "xorriso is not installed: apt-get install xorriso (make e2e-deps)")
	}
	src := t.TempDir()
	for p, content := range files {
		full := filepath.Join(src, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for p, target := range links {
		if err := os.Symlink(target, filepath.Join(src, filepath.FromSlash(p))); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, name)
	if b, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-R", "-V", "SLIPWAY_RELEASE", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, b)
	}
	return out
}
