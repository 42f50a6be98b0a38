package wiring

import (
	"errors"
	"strings"
	"testing"
)

func TestResolveInterface(t *testing.T) {
	lo := nic{Name: "lo"}
	eth0 := nic{Name: "eth0", MAC: "52:54:00:00:00:01", Wired: true, Link: true}
	eth1 := nic{Name: "eth1", MAC: "52:54:00:00:00:02", Wired: true}
	wlan := nic{Name: "wlan0", MAC: "52:54:00:00:00:03"}
	tests := []struct {
		name    string
		spec    string
		nics    []nic
		want    string
		wantErr string
	}{
		{"a name is taken as it is", "eth9", []nic{lo, eth0}, "eth9", ""},
		{"auto with one wired NIC", "auto", []nic{lo, eth0, wlan}, "eth0", ""},
		{"auto with two wired NICs", "auto", []nic{lo, eth0, eth1}, "",
			`"auto" found 2 wired NICs: eth0 (52:54:00:00:00:01, link up), eth1 (52:54:00:00:00:02, no link); name the one on the provisioning LAN by name or MAC address`},
		{"auto with none", "auto", []nic{lo, wlan}, "", `"auto" found no wired NIC on this host (it has: wlan0 (52:54:00:00:00:03, no link))`},
		{"by MAC", "52:54:00:00:00:02", []nic{lo, eth0, eth1}, "eth1", ""},
		{"by MAC in capitals", "52:54:00:00:00:0A", []nic{{Name: "enp1s0", MAC: "52:54:00:00:00:0a"}}, "enp1s0", ""},
		{"by a MAC nobody has", "52:54:00:00:00:09", []nic{lo, eth0}, "", "no interface has the MAC address 52:54:00:00:00:09 (this host has: eth0 (52:54:00:00:00:01, link up))"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveInterface(tt.spec, tt.nics)
			if tt.wantErr != "" {
				var le LANError
				if !errors.As(err, &le) || le.Field != "lan.interface" || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want lan.interface: %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
