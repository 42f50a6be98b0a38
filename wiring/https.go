package wiring

import (
	"crypto/tls"
	"time"

	"github.com/slipway/slipway/appliance/tlscert"
	"github.com/slipway/slipway/web"
)

// certificate is the console's and APIs' certificate (the operator's, or
// one made at first start), nil when nothing is served over TLS.
func (a *Appliance) certificate() (*tlscert.Cert, error) {
	if a.cfg.HTTPS.Port == 0 && !a.cfg.USM.TLS {
		return nil, nil
	}
	cert, err := tlscert.Load(tlscert.Files{CertFile: a.cfg.HTTPS.CertFile, KeyFile: a.cfg.HTTPS.KeyFile, Dir: a.cfg.TLSDir(),
		Addr: a.cfg.LANIP(), Hosts: a.cfg.HTTPS.Hosts}, time.Now())
	if err != nil {
		return nil, err
	}
	if cert.SelfMade {
		a.log.Info("the console and API use a self-signed certificate: compare its fingerprint with the browser's",
			"sha256", cert.Fingerprint, "file", a.cfg.TLSDir()+"/tls.crt")
	}
	return &cert, nil
}

func serverTLS(cert *tlscert.Cert) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12}
}

// serveTLS fills web's TLS settings from https: the certificate (the
// operator's, or one made at first start), the console kept to TLS, and
// the APIs too unless https.plain_api. It returns the certificate's
// fingerprint ("" without TLS).
func (a *Appliance) serveTLS(cfg *web.Config, mounts []web.Mount, cert *tlscert.Cert) (string, error) {
	if a.cfg.HTTPS.Port == 0 {
		return "", nil
	}
	cfg.TLS = serverTLS(cert)
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
