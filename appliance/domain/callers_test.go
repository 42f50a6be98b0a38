package domain

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
)

// Only the machine itself, or whoever holds its token, speaks for a MAC.
func TestCallerCheck(t *testing.T) {
	const mac, other = MAC("52:54:00:00:0d:01"), MAC("52:54:00:00:0d:02")
	leased := netip.MustParseAddr("10.88.0.50")
	neighbors := map[netip.Addr]MAC{netip.MustParseAddr("10.88.0.7"): mac, netip.MustParseAddr("10.88.0.8"): other}
	newCheck := func(policy CallerPolicy, leases bool) *CallerCheck {
		cfg := CallerCheckConfig{Policy: policy, Own: netip.MustParseAddr("10.88.0.1"), Key: []byte("0123456789abcdef0123456789abcdef"), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Neighbor: func(a netip.Addr) (MAC, error) {
				if m, ok := neighbors[a]; ok {
					return m, nil
				}
				return "", errors.New("no entry")
			}}
		if leases {
			cfg.Leased = func(m MAC) (netip.Addr, bool) { return leased, m == mac }
		}
		return NewCallerCheck(cfg)
	}
	check := newCheck(CallerAddress, true)
	token := check.Token(mac)
	tests := []struct {
		name    string
		check   *CallerCheck
		from    Caller
		refused string // "" when accepted
	}{
		{"its leased address", check, Caller{Addr: leased}, ""},
		{"its leased address, IPv4-mapped", check, Caller{Addr: netip.AddrFrom16(leased.As16())}, ""},
		{"another address", check, Caller{Addr: netip.MustParseAddr("10.88.0.99")}, "not the machine's leased address (10.88.0.50)"},
		{"the neighbour table places it", check, Caller{Addr: netip.MustParseAddr("10.88.0.7")}, ""},
		{"the neighbour table places another MAC there", check, Caller{Addr: netip.MustParseAddr("10.88.0.8")}, "not the machine's leased address"},
		{"its token, from anywhere", check, Caller{Addr: netip.MustParseAddr("192.0.2.1"), Token: token}, ""},
		{"another machine's token", check, Caller{Addr: leased, Token: check.Token(other)}, "the node token is not that machine's"},
		{"loopback: the box itself", check, Caller{Addr: netip.MustParseAddr("127.0.0.1")}, ""},
		{"the box's own LAN address", check, Caller{Addr: netip.MustParseAddr("10.88.0.1")}, ""},
		{"no lease book (proxyDHCP), placed by the neighbour table", newCheck(CallerAddress, false), Caller{Addr: netip.MustParseAddr("10.88.0.7")}, ""},
		{"no lease book, not placed", newCheck(CallerAddress, false), Caller{Addr: netip.MustParseAddr("10.88.0.9")}, "has no lease from Slipway"},
		{"check off", newCheck(CallerOff, true), Caller{Addr: netip.MustParseAddr("10.88.0.99")}, ""},
		{"no address at all", check, Caller{}, "may not speak for"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.check.Refused()
			err := tt.check.Prove(mac, tt.from, DoorHeartbeat)
			var refused *CallerRefusedError
			switch {
			case tt.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.refused != "" && (!errors.As(err, &refused) || !strings.Contains(err.Error(), tt.refused)):
				t.Fatalf("got %v, want a refusal saying %q", err, tt.refused)
			case tt.refused != "" && tt.check.Refused() != before+1:
				t.Fatalf("refusals counted %d, want %d", tt.check.Refused(), before+1)
			}
		})
	}
	if token == check.Token(other) || token != newCheck(CallerOff, false).Token(mac) {
		t.Fatal("a token must be the MAC's alone, and the same under the same key")
	}
	rekeyed := NewCallerCheck(CallerCheckConfig{Key: []byte("another key, another token set..")})
	if rekeyed.Token(mac) == token {
		t.Fatal("a new key must make new tokens")
	}
}
