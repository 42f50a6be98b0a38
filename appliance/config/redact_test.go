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

func TestValue(t *testing.T) {
	cfg, err := Parse([]byte(minimal + "image:\n  state_device: LABEL=fast\nusers:\n  - {name: ann, role: admin, password_hash: '$2b$10$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, want, wantErr string
	}{
		{path: "image.state_device", want: "LABEL=fast"},
		{path: "data_dir", want: "/var/lib/slipway"},
		{path: "dhcp.lease_time", want: "1h0m0s"},
		{path: "lan.configure", want: "false"},
		{path: "image", want: "state_device: LABEL=fast"},
		{path: "users", want: "- name: ann\n  role: admin\n  password_hash: (redacted)"},
		{path: "image.nothing", wantErr: "image.nothing: no such field"},
		{path: "data_dir.deeper", wantErr: "no such field"},
	}
	for _, tt := range tests {
		got, err := cfg.Value(tt.path)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Value(%q) error = %v, want %q", tt.path, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !strings.HasPrefix(got, tt.want) {
			t.Errorf("Value(%q) = %q, %v; want %q", tt.path, got, err, tt.want)
		}
	}
}
