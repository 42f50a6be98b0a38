package bmcemu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"sync"
	"time"
)

// Running is an emulator listening on an address.
type Running struct {
	*Emulator
	URL string // http://127.0.0.1:port or https://…
	// CertPEM is the self-signed certificate it serves HTTPS with (empty
	// over HTTP): what an operator would add to the trusted CAs.
	CertPEM []byte
	server  *http.Server
	done    chan struct{}
}

// Serve puts e on addr ("127.0.0.1:0" for any free port), over HTTPS with
// a self-signed certificate if useTLS, as a BMC out of the box has.
func Serve(e *Emulator, addr string, useTLS bool) (*Running, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulated BMC: %w", err)
	}
	scheme := "http"
	var certPEM []byte
	if useTLS {
		cert, err := selfSigned(ln.Addr().(*net.TCPAddr).IP)
		if err != nil {
			ln.Close()
			return nil, err
		}
		certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	r := &Running{
		Emulator: e, URL: scheme + "://" + ln.Addr().String(), CertPEM: certPEM,
		// Clients that refuse the self-signed certificate are expected: not news.
		server: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)},
		done:   make(chan struct{}),
	}
	go func() {
		defer close(r.done)
		// Serve only returns when Close closed it: ErrServerClosed.
		_ = r.server.Serve(ln)
	}()
	return r, nil
}

// Close stops the listener, in-flight requests and the emulator.
func (r *Running) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r.Emulator.Close() // ends hanging requests first, so Shutdown does not wait on them
	if r.server.Shutdown(ctx) != nil {
		_ = r.server.Close()
	}
	<-r.done
}

// selfSigned makes a certificate for ip that no client trusts, like the
// one a BMC ships with.
func selfSigned(ip net.IP) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("BMC certificate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "emulated BMC"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{ip},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("BMC certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// Farm is many emulated BMCs in one process, each on its own loopback
// port, sharing one parsed mockup.
type Farm struct {
	BMCs []*Running
}

// Requests is how many HTTP requests the farm's BMCs have been sent.
func (f *Farm) Requests() int64 {
	var n int64
	for _, b := range f.BMCs {
		n += b.Requests()
	}
	return n
}

// StartFarm starts n emulators; configure fills in each one's Config (its
// Mockup is set to a shared one if left nil).
func StartFarm(n int, useTLS bool, configure func(i int, c *Config)) (*Farm, error) {
	shared, err := LoadMockup(DefaultMockup)
	if err != nil {
		return nil, err
	}
	f := &Farm{BMCs: make([]*Running, n)}
	for i := range n {
		cfg := Config{}
		if configure != nil {
			configure(i, &cfg)
		}
		if cfg.Mockup == nil {
			cfg.Mockup = shared
		}
		e, err := New(cfg)
		if err == nil {
			if f.BMCs[i], err = Serve(e, "127.0.0.1:0", useTLS); err != nil {
				e.Close()
			}
		}
		if err != nil {
			f.BMCs = f.BMCs[:i]
			f.Close()
			return nil, fmt.Errorf("emulated BMC %d of %d: %w", i+1, n, err)
		}
	}
	return f, nil
}

// Close stops every emulator of the farm.
func (f *Farm) Close() {
	var wg sync.WaitGroup
	for _, b := range f.BMCs {
		wg.Go(b.Close)
	}
	wg.Wait()
}
