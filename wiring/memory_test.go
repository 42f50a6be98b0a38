package wiring

import (
	"log/slog"
	"math"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/slipway/slipway/appliance/config"
)

// memory_limit becomes the runtime's soft limit; GOMEMLIMIT set by whoever
// started Slipway is left alone.
func TestMemoryLimitIsTheRuntimes(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	system, err := memlimit.FromSystem()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, value, env string
		ok               func(limit int64) bool
	}{
		{"a size", "512MiB", "", func(l int64) bool { return l == 512<<20 }},
		{"auto: a share of what the box has", "auto", "", func(l int64) bool { return l >= 64<<20 && l <= int64(float64(system)*autoMemoryShare) }},
		{"off", "off", "", func(l int64) bool { return l == math.MaxInt64 }},
		{"GOMEMLIMIT wins", "512MiB", "300MiB", func(l int64) bool { return l == math.MaxInt64 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tt.env)
			debug.SetMemoryLimit(math.MaxInt64) // the runtime's default: none
			cfg, err := config.Parse([]byte("lan: {interface: eth1, address: 10.88.0.1/24}\ndhcp: {range: {start: 10.88.0.100, end: 10.88.0.199}}\nmemory_limit: " + tt.value + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			New(cfg, Options{Logger: slog.New(slog.DiscardHandler)}).limitMemory()
			if got := debug.SetMemoryLimit(-1); !tt.ok(got) {
				t.Errorf("memory_limit: %s (GOMEMLIMIT=%q): the runtime's limit is %d", tt.value, tt.env, got)
			}
		})
	}
}
