package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Cert is the certificate the console and API are served with.
type Cert struct {
	TLS tls.Certificate
	// Fingerprint is the SHA-256 of the leaf certificate, as browsers show
	// it: AB:CD:….
	Fingerprint string
	// SelfMade says Slipway made it (no operator's certificate given).
	SelfMade bool
}

// Files are where a certificate is read from, or made at.
type Files struct {
	CertFile, KeyFile string // the operator's own; both or neither
	// Dir holds the self-made certificate (tls.crt, tls.key) when the
	// operator gives none.
	Dir string
	// Addr and Hosts are what a self-made certificate names: the box's LAN
	// address and any host names it is reached by.
	Addr  netip.Addr
	Hosts []string
}

// Load reads the operator's certificate or, without one, the self-made
// one, making it first if there is none or the one there does not name
// the box's address any more (the LAN was renumbered).
func Load(f Files, now time.Time) (Cert, error) {
	if f.CertFile != "" || f.KeyFile != "" {
		c, err := read(f.CertFile, f.KeyFile)
		if err != nil {
			return Cert{}, fmt.Errorf("https.cert_file and https.key_file: %w", err)
		}
		return c, nil
	}
	certFile, keyFile := filepath.Join(f.Dir, "tls.crt"), filepath.Join(f.Dir, "tls.key")
	c, err := read(certFile, keyFile)
	if err == nil && names(c, f) && now.Before(c.TLS.Leaf.NotAfter) {
		c.SelfMade = true
		return c, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Cert{}, fmt.Errorf("the self-made certificate in %s: %w (delete tls.crt and tls.key to have a new one made)", f.Dir, err)
	}
	if err := create(certFile, keyFile, f, now); err != nil {
		return Cert{}, fmt.Errorf("make a certificate in %s: %w", f.Dir, err)
	}
	c, err = read(certFile, keyFile)
	c.SelfMade = true
	return c, err
}

// read loads a PEM chain and key and checks they belong together.
func read(certFile, keyFile string) (Cert, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile) // parses Leaf too (Go 1.23 on)
	if err != nil {
		return Cert{}, err
	}
	return Cert{TLS: pair, Fingerprint: Fingerprint(pair.Certificate[0])}, nil
}

// names says whether c names every address and host f asks for.
func names(c Cert, f Files) bool {
	leaf := c.TLS.Leaf
	if f.Addr.IsValid() && !slices.ContainsFunc(leaf.IPAddresses, func(ip net.IP) bool {
		a, ok := netip.AddrFromSlice(ip)
		return ok && a.Unmap() == f.Addr.Unmap()
	}) {
		return false
	}
	for _, h := range f.Hosts {
		if !slices.Contains(leaf.DNSNames, h) {
			return false
		}
	}
	return true
}

// lifetime of a self-made certificate: an appliance on an isolated LAN
// is not renewed by anyone, and browsers ask the operator to accept a
// self-signed certificate whatever its dates.
const lifetime = 10 * 365 * 24 * time.Hour

// create writes a new self-signed ECDSA P-256 certificate naming f's address
// and hosts; the key is written 0600, and neither file is left half-made.
func create(certFile, keyFile string, f Files, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Slipway " + f.Addr.String(), Organization: []string{"Slipway appliance"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              append([]string{"localhost"}, f.Hosts...),
		IPAddresses:           []net.IP{f.Addr.AsSlice(), net.IPv6loopback, net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.Dir, 0o750); err != nil {
		return err
	}
	if err := writeAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Fingerprint is the SHA-256 of a DER certificate, as browsers show it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}
