package boot

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Client is what a DHCP request tells about the machine sending it.
type Client struct {
	Arches      []uint16 // option 93 client system architectures; empty if absent
	VendorClass string   // option 60
	UserClasses []string // option 77
}

// Transport is how the next file is fetched.
type Transport int

const (
	// None: a plain DHCP client, or one we have no file for; no boot options.
	None Transport = iota
	// TFTP: PXE firmware fetches File from the TFTP server.
	TFTP
	// HTTP: UEFI HTTP Boot or iPXE fetches File, a full URL.
	HTTP
)

// Decision is what to tell a client about booting.
type Decision struct {
	Transport Transport
	File      string // a TFTP path, or a URL for HTTP
	// VendorClass is echoed in option 60: UEFI HTTP Boot firmware ignores an
	// offer without "HTTPClient", and PXE firmware expects "PXEClient".
	VendorClass string
	Arch        string // the architecture name the file was chosen for
	IPXE        bool   // the client is iPXE, which understands iPXE's own options
	Reason      string // why, for the log
}

// Server is where boot files are served from.
type Server struct {
	IP        netip.Addr
	HTTPPort  int
	BootFiles map[string]string // architecture name → path under the TFTP root
}

// Architecture names, as netboot.boot_files keys them.
const (
	ArchBIOS          = "bios"
	ArchUEFIx64       = "uefi-x64"
	ArchUEFIARM64     = "uefi-arm64"
	ArchUEFIx64HTTP   = "uefi-x64-http"
	ArchUEFIARM64HTTP = "uefi-arm64-http"
)

// archNames maps RFC 4578 / IANA processor architecture types to names.
func archName(arch uint16) (string, bool) {
	switch arch {
	case 0:
		return ArchBIOS, true
	case 7, 9:
		return ArchUEFIx64, true
	case 11:
		return ArchUEFIARM64, true
	case 16:
		return ArchUEFIx64HTTP, true
	case 19:
		return ArchUEFIARM64HTTP, true
	}
	return "", false
}

// Decide returns what client should boot.
func Decide(c Client, s Server) Decision {
	ipxe := false
	for _, uc := range c.UserClasses {
		if uc == "iPXE" {
			ipxe = true
		}
	}
	pxe := strings.HasPrefix(c.VendorClass, "PXEClient")
	httpClient := strings.HasPrefix(c.VendorClass, "HTTPClient")
	switch {
	case ipxe:
		// iPXE is already loaded: break the loop and hand it its script.
		return Decision{Transport: HTTP, File: s.url("/boot.ipxe"), VendorClass: echo(pxe, httpClient), IPXE: true, Reason: "iPXE asks for its script"}
	case !pxe && !httpClient:
		return Decision{Reason: "not a netboot client (no PXEClient or HTTPClient vendor class)"}
	}
	if len(c.Arches) == 0 {
		return Decision{Reason: "netboot client without an architecture (option 93)"}
	}
	name, ok := archName(c.Arches[0])
	if !ok {
		return Decision{Reason: fmt.Sprintf("unsupported client architecture %d", c.Arches[0])}
	}
	file, ok := s.bootFile(name)
	if !ok {
		return Decision{Arch: name, Reason: "no boot file configured for " + name}
	}
	if httpClient {
		return Decision{Transport: HTTP, File: s.url("/boot/" + file), VendorClass: "HTTPClient", Arch: name, Reason: "UEFI HTTP Boot"}
	}
	return Decision{Transport: TFTP, File: file, VendorClass: "PXEClient", Arch: name, Reason: "PXE firmware"}
}

// bootFile finds the file for an architecture; the HTTP Boot variants fall
// back to the plain UEFI file, which is the same binary.
func (s Server) bootFile(name string) (string, bool) {
	if f, ok := s.BootFiles[name]; ok {
		return f, true
	}
	f, ok := s.BootFiles[strings.TrimSuffix(name, "-http")]
	return f, ok
}

func (s Server) url(path string) string {
	return "http://" + netip.AddrPortFrom(s.IP, uint16(s.HTTPPort)).String() + path
}

func echo(pxe, httpClient bool) string {
	switch {
	case httpClient:
		return "HTTPClient"
	case pxe:
		return "PXEClient"
	}
	return ""
}

// String names a transport in logs.
func (t Transport) String() string {
	switch t {
	case TFTP:
		return "tftp"
	case HTTP:
		return "http"
	}
	return "none:" + strconv.Itoa(int(t))
}
