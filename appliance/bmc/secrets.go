package bmc

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/slipway/slipway/appliance/keyfile"
)

// Sealer encrypts BMC passwords at rest (AES-256-GCM) with a key file in
// the data directory: a copy of the database alone does not give away
// the fleet's BMC credentials.
type Sealer struct {
	aead cipher.AEAD
}

const sealVersion = 1

// OpenSealer reads the key at path, creating it (mode 0600) on first use.
func OpenSealer(path string) (*Sealer, error) {
	key, err := keyfile.Load(path)
	if err != nil {
		return nil, fmt.Errorf("%w (BMC passwords sealed with it cannot be read without it)", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key %s: %w", path, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key %s: %w", path, err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts secret, bound to owner (a BMC id): a sealed password
// copied to another BMC's row does not open.
func (s *Sealer) Seal(secret, owner string) []byte {
	nonce := make([]byte, s.aead.NonceSize(), 1+s.aead.NonceSize()+len(secret)+s.aead.Overhead())
	_, _ = rand.Read(nonce)
	out := append([]byte{sealVersion}, nonce...)
	return s.aead.Seal(out, nonce, []byte(secret), []byte(owner))
}

// Open decrypts what Seal sealed for owner.
func (s *Sealer) Open(sealed []byte, owner string) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != sealVersion {
		return "", errors.New("sealed secret: unknown format")
	}
	plain, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(owner))
	if err != nil {
		return "", errors.New("sealed secret does not open with this data directory's key (was the key file replaced?)")
	}
	return string(plain), nil
}
