package domain

import (
	"sync"
	"time"
)

// DHCPFingerprint is what a machine's firmware said of itself in its last
// DHCP request: a fingerprint of the firmware and its boot stage, which a
// deployment keeps as build data.
type DHCPFingerprint struct {
	MessageType string
	VendorClass string  // option 60, e.g. PXEClient:Arch:00007:UNDI:003016
	UserClass   string  // option 77, e.g. iPXE
	Arch        []int   // option 93, client system architectures
	Params      []uint8 // option 55, the parameter request list, in order
	MaxSize     int     // option 57
	Hostname    string  // option 12
	Relay       string  // giaddr, when relayed
	At          time.Time
}

// fingerprints keeps each MAC's last DHCP fingerprint in memory, up to a
// bound: a storm of new MACs cannot grow it without end.
type fingerprints struct {
	mu sync.Mutex
	m  map[MAC]DHCPFingerprint
}

const maxFingerprints = 65536

// RecordFingerprint keeps mac's latest DHCP fingerprint. It costs a map
// write: the DHCP door calls it for every request.
func (inv *Inventory) RecordFingerprint(mac MAC, fp DHCPFingerprint) {
	f := &inv.fingerprints
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[MAC]DHCPFingerprint{}
	}
	if _, known := f.m[mac]; !known && len(f.m) >= maxFingerprints {
		for old := range f.m { // forget one: any will do
			delete(f.m, old)
			break
		}
	}
	f.m[mac] = fp
}

// Fingerprint is mac's latest DHCP fingerprint since Slipway started.
func (inv *Inventory) Fingerprint(mac MAC) (DHCPFingerprint, bool) {
	f := &inv.fingerprints
	f.mu.Lock()
	defer f.mu.Unlock()
	fp, ok := f.m[mac]
	return fp, ok
}
