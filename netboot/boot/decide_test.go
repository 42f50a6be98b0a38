package boot

import (
	"net/netip"
	"testing"
)

func TestDecide(t *testing.T) {
	s := Server{IP: netip.MustParseAddr("10.88.0.1"), HTTPPort: 80, BootFiles: map[string]string{
		ArchBIOS: "undionly.kpxe", ArchUEFIx64: "ipxe.efi", ArchUEFIARM64: "arm64/ipxe.efi",
	}}
	tests := []struct {
		name   string
		client Client
		want   Decision
	}{
		{"plain DHCP client", Client{}, Decision{}},
		{"BIOS PXE", Client{Arches: []uint16{0}, VendorClass: "PXEClient:Arch:00000:UNDI:002001"},
			Decision{Transport: TFTP, File: "undionly.kpxe", VendorClass: "PXEClient", Arch: ArchBIOS}},
		{"UEFI x64 PXE (7)", Client{Arches: []uint16{7}, VendorClass: "PXEClient:Arch:00007:UNDI:003016"},
			Decision{Transport: TFTP, File: "ipxe.efi", VendorClass: "PXEClient", Arch: ArchUEFIx64}},
		{"UEFI x64 PXE (9)", Client{Arches: []uint16{9}, VendorClass: "PXEClient"},
			Decision{Transport: TFTP, File: "ipxe.efi", VendorClass: "PXEClient", Arch: ArchUEFIx64}},
		{"ARM64 UEFI PXE", Client{Arches: []uint16{11}, VendorClass: "PXEClient:Arch:00011"},
			Decision{Transport: TFTP, File: "arm64/ipxe.efi", VendorClass: "PXEClient", Arch: ArchUEFIARM64}},
		{"x64 UEFI HTTP Boot", Client{Arches: []uint16{16}, VendorClass: "HTTPClient:Arch:00016"},
			Decision{Transport: HTTP, File: "http://10.88.0.1:80/boot/ipxe.efi", VendorClass: "HTTPClient", Arch: ArchUEFIx64HTTP}},
		{"ARM64 UEFI HTTP Boot", Client{Arches: []uint16{19}, VendorClass: "HTTPClient:Arch:00019"},
			Decision{Transport: HTTP, File: "http://10.88.0.1:80/boot/arm64/ipxe.efi", VendorClass: "HTTPClient", Arch: ArchUEFIARM64HTTP}},
		{"iPXE breaks the loop", Client{Arches: []uint16{0}, VendorClass: "PXEClient:Arch:00000", UserClasses: []string{"iPXE"}},
			Decision{Transport: HTTP, File: "http://10.88.0.1:80/boot.ipxe", VendorClass: "PXEClient", IPXE: true}},
		{"unknown architecture", Client{Arches: []uint16{2}, VendorClass: "PXEClient"}, Decision{}},
		{"PXE without option 93", Client{VendorClass: "PXEClient"}, Decision{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.client, s)
			got.Reason = "" // prose, not policy
			if tt.want.Transport == None {
				if got.Transport != None {
					t.Fatalf("got %+v, want no boot", got)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDecideWithoutABootFile(t *testing.T) {
	got := Decide(Client{Arches: []uint16{11}, VendorClass: "PXEClient"}, Server{BootFiles: map[string]string{ArchBIOS: "x"}})
	if got.Transport != None || got.Reason != "no boot file configured for uefi-arm64" {
		t.Fatalf("got %+v", got)
	}
}
