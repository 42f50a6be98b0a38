package config

import "testing"

func TestParseMemoryLimit(t *testing.T) {
	tests := []struct {
		in      string
		want    MemoryLimit
		wantErr bool
	}{
		{"auto", MemoryLimit{Auto: true}, false},
		{"off", MemoryLimit{}, false},
		{"768MiB", MemoryLimit{Bytes: 768 << 20}, false},
		{"2GiB", MemoryLimit{Bytes: 2 << 30}, false},
		{"1TiB", MemoryLimit{Bytes: 1 << 40}, false},
		{"65536KiB", MemoryLimit{Bytes: 64 << 20}, false},
		{"67108864B", MemoryLimit{Bytes: 64 << 20}, false},
		{"63MiB", MemoryLimit{}, true},
		{"512", MemoryLimit{}, true},
		{"512MB", MemoryLimit{}, true}, // GOMEMLIMIT's units are binary: MiB
		{"-1GiB", MemoryLimit{}, true},
		{"0MiB", MemoryLimit{}, true},
		{"9999999999TiB", MemoryLimit{}, true},
		{"", MemoryLimit{}, true},
		{"Auto", MemoryLimit{}, true},
	}
	for _, tt := range tests {
		got, err := ParseMemoryLimit(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseMemoryLimit(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
