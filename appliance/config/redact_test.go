package config

import (
	"strings"
	"testing"
)

// The effective configuration reads back as a valid config, durations
// and all, with no password hash in it.
func TestRedactedReadsBackWithoutSecrets(t *testing.T) {
	hash := "$2b$10$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	cfg, err := Parse([]byte(minimal + "users:\n  - {name: ann, role: admin, password_hash: '" + hash + "'}\n" +
		"mqtt:\n  users:\n    - {name: agent, password_hash: '" + hash + "', acl: [{topic: 'site/#', access: read}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := cfg.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(y, hash) || strings.Count(y, "(redacted)") != 2 || !strings.Contains(y, "lease_time: 1h0m0s") {
		t.Fatalf("redacted config:\n%s", y)
	}
	if _, err := Parse([]byte(strings.ReplaceAll(y, "(redacted)", hash))); err != nil {
		t.Errorf("does not read back: %v\n%s", err, y)
	}
}
