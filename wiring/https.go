package wiring

import (
	"crypto/tls"
	"time"

	"github.com/slipway/slipway/appliance/tlscert"
	"github.com/slipway/slipway/web"
)

// serveTLS fills web's TLS settings from https: the certificate (the
// operator's, or one made at first start), the console kept to TLS, and
// the APIs too unless https.plain_api. It returns the certificate's
// fingerprint ("" without TLS).
func (a *Appliance) serveTLS(cfg *web.Config, mounts []web.Mount) (string, error) {
	if a.cfg.HTTPS.Port == 0 {
		return "", nil
	}
	cert, err := tlscert.Load(tlscert.Files{CertFile: a.cfg.HTTPS.CertFile, KeyFile: a.cfg.HTTPS.KeyFile, Dir: a.cfg.TLSDir(),
		Addr: a.cfg.LANIP(), Hosts: a.cfg.HTTPS.Hosts}, time.Now())
	if err != nil {
		return "", err
	}
	if cert.SelfMade {
		a.log.Info("the console and API use a self-signed certificate: compare its fingerprint with the browser's",
			"sha256", cert.Fingerprint, "file", a.cfg.TLSDir()+"/tls.crt")
	}
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12}
	cfg.TLSPort, cfg.TLSPortField = a.cfg.HTTPS.Port, "https.port"
	cfg.TLSOnly = []string{"/console"}
	if !a.cfg.HTTPS.PlainAPI {
		for _, m := range mounts {
			if m.Auth != nil {
				cfg.TLSOnly = append(cfg.TLSOnly, m.Prefix)
			}
		}
	}
	return cert.Fingerprint, nil
}
