package keyfile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadCreatesOnceAndKeeps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	first, err := Load(path)
	if err != nil || len(first) != Size {
		t.Fatalf("%x %v", first, err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", info.Mode().Perm())
	}
	again, err := Load(path)
	if err != nil || !bytes.Equal(first, again) {
		t.Errorf("a second load gave another key")
	}
	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "restore it from a backup") {
		t.Errorf("a damaged key: %v", err)
	}
}
