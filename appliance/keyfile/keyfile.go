// Package keyfile keeps the appliance's secret keys (the one BMC passwords
// are sealed with, the one session tokens are signed with) as files in the
// data directory: 32 random bytes each, mode 0600, created at first use.
package keyfile

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Size is the length of every key.
const Size = 32

// Load reads the key at path, creating it on first use. A key of another
// size is an error: it was replaced or damaged, and what it protects
// cannot be read with another.
func Load(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = create(path)
	}
	if err != nil {
		return nil, fmt.Errorf("secret key %s: %w", path, err)
	}
	if len(key) != Size {
		return nil, fmt.Errorf("secret key %s: %d bytes, want %d: restore it from a backup", path, len(key), Size)
	}
	return key, nil
}

// create writes a new random key without ever leaving a partial file
// under the final name.
func create(path string) ([]byte, error) {
	key := make([]byte, Size)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil {
		return nil, err
	}
	if _, err := tmp.Write(key); err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	// Link, not rename: if another process created the key meanwhile,
	// theirs wins and we read it.
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return os.ReadFile(path)
	} else if err != nil {
		return nil, err
	}
	return key, nil
}
