package neighbor

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const arpTable = `IP address       HW type     Flags       HW address            Mask     Device
10.88.0.23       0x1         0x2         52:54:00:12:34:56     *        lan0
10.88.0.24       0x1         0x0         00:00:00:00:00:00     *        lan0
10.88.0.25       0x1         0x6         52:54:00:AB:CD:EF     *        lan0
`

func TestParseARP(t *testing.T) {
	tests := []struct {
		ip      string
		want    string
		wantErr error
	}{
		{"10.88.0.23", "52:54:00:12:34:56", nil},
		{"10.88.0.25", "52:54:00:ab:cd:ef", nil}, // permanent and complete; MAC normalised
		{"10.88.0.24", "", ErrNotFound},          // incomplete
		{"10.88.0.99", "", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			got, err := parseARP(strings.NewReader(arpTable), netip.MustParseAddr(tt.ip))
			if string(got) != tt.want || !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// The loopback address has no neighbor entry anywhere: Lookup says so and
// names both sources it tried.
func TestLookupMissIsAnError(t *testing.T) {
	arp := filepath.Join(t.TempDir(), "arp")
	if err := os.WriteFile(arp, []byte(arpTable), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Table{ARPFile: arp}.Lookup(netip.MustParseAddr("127.0.0.1"))
	if err == nil || !strings.Contains(err.Error(), "netlink") || !strings.Contains(err.Error(), "ARP file") {
		t.Fatalf("want an error naming both sources, got %v", err)
	}
	mac, err := Table{ARPFile: arp}.Lookup(netip.MustParseAddr("10.88.0.23"))
	if err != nil || mac != "52:54:00:12:34:56" {
		t.Fatalf("the ARP file fallback: %q, %v", mac, err)
	}
}
