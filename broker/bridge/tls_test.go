package bridge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/testbed/testkit"
)

// pki is a CA and the PEM files it signed, in a test's directory.
type pki struct {
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	p.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, _ = x509.ParseCertificate(der)
	p.write(t, "ca.pem", "CERTIFICATE", der)
	p.serial = 1
	return p
}

func (p *pki) write(t *testing.T, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue makes a certificate and key called name, for a server at
// 127.0.0.1 or a client, and returns their files.
func (p *pki) issue(t *testing.T, name string, server bool) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+".key", "PRIVATE KEY", keyDER)
}

// An upstream that requires a client certificate signed by its CA: the
// bridge with one gets in and delivers; without one it is refused, says
// why, and keeps the events.
func TestTLSWithAClientCertificate(t *testing.T) {
	p := newPKI(t)
	serverCert, serverKey := p.issue(t, "broker", true)
	clientCert, clientKey := p.issue(t, "slipway-a", false)
	ca := filepath.Join(p.dir, "ca.pem")
	centralCert, centralKey := p.issue(t, "central", false)
	otherCert, otherKey := p.issue(t, "slipway-b", false)
	// docs/bridge.md's configuration and ACL, for this test's sites
	// (startUpstream adds its max_queued_messages 0).
	acl := filepath.Join(p.dir, "slipway.acl")
	os.WriteFile(acl, []byte(`user slipway-a
topic write sites/a/#
topic read sites/a/slipway/v1/commands/+
user slipway-b
topic write sites/b/#
topic read sites/b/slipway/v1/commands/+
user central
topic read sites/#
topic write sites/+/slipway/v1/commands/+
`), 0o644)
	up := startUpstream(t, "cafile "+ca, "certfile "+serverCert, "keyfile "+serverKey, "require_certificate true",
		"use_identity_as_username true", "acl_file "+acl, "tls_version tlsv1.2")
	url := fmt.Sprintf("mqtts://127.0.0.1:%d", up.Port)

	watcherTLS, err := TLSConfig(ca, centralCert, centralKey)
	if err != nil {
		t.Fatal(err)
	}
	watcher := subscribe(t, url, "sites/#", true, func(o *paho.ClientOptions) { o.SetTLSConfig(watcherTLS) })

	withCert, err := TLSConfig(ca, clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, url, func(c *Config) { c.TLS = withCert })
	sent := []outbox.Message{machineState(1, 10), machineState(2, 10)}
	f.enqueue(t, sent)
	testkit.WaitFor(t, "the events over TLS", func() bool { return heardTheLast(watcher, sent, "sites/a/") })
	checkEveryEventInOrder(t, watcher, sent, "sites/a/")

	// Another site's box, set up with this site's prefix: the ACL drops it.
	otherTLS, err := TLSConfig(ca, otherCert, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	other := newFixture(t, url, func(c *Config) { c.TLS, c.ClientID = otherTLS, "slipway-b" })
	forged := []outbox.Message{{Topic: "NICO/v1/machine/m1/state", Payload: []byte(`{"forged":true}`), QoS: 1}}
	other.enqueue(t, forged)
	// mosquitto acknowledges and drops what the ACL refuses, or (2.0.11,
	// over TLS, with max_queued_messages 0) drops the connection too.
	testkit.WaitFor(t, "the other box to try", func() bool { s := other.bridge.Status(); return s.Sent == 1 || s.LastError != "" })
	f.enqueue(t, []outbox.Message{machineState(3, 10)})
	testkit.WaitFor(t, "a later event of the right box", func() bool { return heardTheLast(watcher, []outbox.Message{machineState(3, 10)}, "sites/a/") })
	if heardTheLast(watcher, forged, "sites/a/") {
		t.Error("the ACL let another site's box write under sites/a/")
	}

	withoutCert, err := TLSConfig(ca, "", "")
	if err != nil {
		t.Fatal(err)
	}
	refused := newFixture(t, url, func(c *Config) { c.TLS, c.ClientID = withoutCert, "slipway-c" })
	refused.enqueue(t, sent)
	testkit.WaitFor(t, "the refusal to be told", func() bool { return refused.bridge.Status().LastError != "" })
	testkit.WaitFor(t, "the backlog to be kept", func() bool { return refused.bridge.Status().Backlog == 2 })
	if s := refused.bridge.Status(); s.Connected || !strings.Contains(s.LastError, "connect to "+url) {
		t.Errorf("without a client certificate: %+v", s)
	}
}

func TestTLSConfigNamesTheBadFile(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("junk"), 0o600)
	for _, tt := range []struct{ ca, cert, key, want string }{
		{filepath.Join(dir, "missing"), "", "", "bridge.ca_file"},
		{junk, "", "", "holds no PEM certificate"},
		{"", junk, junk, "bridge.cert_file"},
	} {
		if _, err := TLSConfig(tt.ca, tt.cert, tt.key); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("TLSConfig(%q, %q, %q) = %v; want %q", tt.ca, tt.cert, tt.key, err, tt.want)
		}
	}
}
