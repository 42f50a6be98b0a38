package release

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
)

// Keyring is the OpenPGP public keys whose signatures Slipway accepts.
type Keyring struct {
	keys openpgp.EntityList
}

// LoadKeyring reads public keys, ASCII-armored or binary (gpg --export
// [--armor]), from files.
func LoadKeyring(files []string) (*Keyring, error) {
	k := &Keyring{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("trusted key %s: %w", f, err)
		}
		var keys openpgp.EntityList
		if bytes.Contains(data, []byte("-----BEGIN PGP")) {
			keys, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
		} else {
			keys, err = openpgp.ReadKeyRing(bytes.NewReader(data))
		}
		if err != nil {
			return nil, fmt.Errorf("trusted key %s: not an OpenPGP public key (export one with gpg --export --armor KEYID): %w", f, err)
		}
		k.keys = append(k.keys, keys...)
	}
	return k, nil
}

// Fingerprints are the trusted keys', upper-case hex.
func (k *Keyring) Fingerprints() []string {
	var out []string
	for _, e := range k.keys {
		out = append(out, fingerprint(e))
	}
	return out
}

func fingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(fmt.Sprintf("%x", e.PrimaryKey.Fingerprint))
}

// ErrBadSignature: the signature does not verify against a trusted key.
var ErrBadSignature = errors.New("signature check failed")

// Verify checks a detached signature (armored or binary) of signed and
// returns the fingerprint of the trusted key that made it.
func (k *Keyring) Verify(signed io.Reader, signature []byte) (string, error) {
	if len(k.keys) == 0 {
		return "", fmt.Errorf("%w: no trusted keys: add the signer's public key to usm.trusted_keys", ErrBadSignature)
	}
	var signer *openpgp.Entity
	var err error
	if bytes.HasPrefix(bytes.TrimSpace(signature), []byte("-----BEGIN PGP SIGNATURE")) {
		signer, err = openpgp.CheckArmoredDetachedSignature(k.keys, signed, bytes.NewReader(signature), nil)
	} else {
		signer, err = openpgp.CheckDetachedSignature(k.keys, signed, bytes.NewReader(signature), nil)
	}
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return "", fmt.Errorf("%w: signed by a key that is not trusted (usm.trusted_keys holds %s)", ErrBadSignature, strings.Join(k.Fingerprints(), ", "))
	case err != nil:
		return "", fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return fingerprint(signer), nil
}
