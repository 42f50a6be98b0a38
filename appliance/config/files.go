package config

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"
)

// CheckFiles checks the files the configuration names that must be on the
// machine Slipway runs on (the BMC password files, the BMC CA bundle).
// check-config and serve run it there, so that a missing or unreadable
// one is reported with its line before anything starts; Load does not, so
// that a file can be checked on another machine.
func (c *Config) CheckFiles() error {
	v := &fieldErrors{}
	for _, name := range sortedKeys(c.BMCCredentials) {
		readable(v, "bmc_credentials."+name+".password_file", c.BMCCredentials[name].PasswordFile,
			"put the BMC password in it, readable by root only (chmod 0600)")
	}
	if c.BMC.CAFile != "" {
		readable(v, "bmc.ca_file", c.BMC.CAFile, "name the PEM bundle of the CAs that sign your BMCs' certificates")
	}
	if c.HTTPS.Port != 0 {
		keyPair(v, "https.cert_file", c.HTTPS.CertFile, c.HTTPS.KeyFile, "name the PEM certificate chain the console and API are served with", "name the PEM key of that certificate, readable by root only")
	}
	c.checkBridgeFiles(v)
	if es := c.fieldErrors(v.err()); len(es) > 0 {
		return es
	}
	return nil
}

// keyPair checks a certificate file and its key file (at names the
// certificate's field, and the key's is beside it), once both are set.
func keyPair(v *fieldErrors, at, certFile, keyFile, certFix, keyFix string) {
	if certFile == "" || keyFile == "" {
		return
	}
	keyAt := strings.TrimSuffix(at, "cert_file") + "key_file"
	before := len(v.list)
	readable(v, at, certFile, certFix)
	readable(v, keyAt, keyFile, keyFix)
	if len(v.list) == before {
		if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			v.add(at, fmt.Sprintf("the certificate and key cannot be used: %v", err), "give a PEM certificate chain and the key it was made for")
		}
	}
}

// readable checks that file can be read and holds something.
func readable(v *fieldErrors, at, file, fix string) {
	if file == "" {
		return // required-ness is Validate's
	}
	data, err := os.ReadFile(file)
	switch {
	case err != nil:
		v.add(at, fmt.Sprintf("%s cannot be read: %v", file, unwrapPath(err)), fix)
	case strings.TrimSpace(string(data)) == "":
		v.add(at, fmt.Sprintf("%s is empty", file), fix)
	}
}

// unwrapPath drops the path an *os.PathError repeats.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
