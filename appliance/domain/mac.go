package domain

import (
	"fmt"
	"net"
	"regexp"
	"strings"
)

// MAC is an Ethernet hardware address in its one canonical spelling:
// lowercase, colon-separated ("52:54:00:12:34:56"). Every door normalises the
// addresses it receives to this form so that one machine is never two.
type MAC string

// ParseMAC accepts the spellings operators and firmware use
// (52:54:00:12:34:56, 52-54-00-12-34-56, 5254.0012.3456, 525400123456) and
// returns the canonical form. Only 6-byte Ethernet addresses are accepted.
func ParseMAC(s string) (MAC, error) {
	s = strings.TrimSpace(s)
	if len(s) == 12 && isHex(s) {
		s = s[0:2] + ":" + s[2:4] + ":" + s[4:6] + ":" + s[6:8] + ":" + s[8:10] + ":" + s[10:12]
	}
	hw, err := net.ParseMAC(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a MAC address (write it as 52:54:00:12:34:56)", s)
	}
	if len(hw) != 6 {
		return "", fmt.Errorf("%q is a %d-byte hardware address; only 6-byte Ethernet MACs are supported", s, len(hw))
	}
	return MAC(hw.String()), nil
}

// Slug is the MAC in a filesystem- and URL-safe form ("52-54-00-12-34-56"),
// as PXELINUX and GRUB name per-MAC files.
func (m MAC) Slug() string { return strings.ReplaceAll(string(m), ":", "-") }

// String returns the canonical spelling.
func (m MAC) String() string { return string(m) }

func isHex(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

var hostnameLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// SanitizeHostname makes what a client calls itself (DHCP option 12, any
// bytes) a valid hostname, or "": characters other than letters, digits,
// '-' and '.' become '-', empty labels go, each label is cut to 63 and
// trimmed of '-', the whole cut to 253.
func SanitizeHostname(s string) string {
	mapped := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.':
			return r
		}
		return '-'
	}, s)
	var labels []string
	for _, l := range strings.Split(mapped, ".") {
		if len(l) > 63 {
			l = l[:63]
		}
		if l = strings.Trim(l, "-"); l != "" {
			labels = append(labels, l)
		}
	}
	for len(strings.Join(labels, ".")) > 253 {
		labels = labels[:len(labels)-1] // the last labels go first
	}
	out := strings.Join(labels, ".")
	if !ValidHostname(out) {
		return ""
	}
	return out
}

// ValidHostname says whether s is a DNS hostname: dot-separated labels of
// letters, digits and inner '-', 253 characters at most.
func ValidHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if !hostnameLabel.MatchString(label) {
			return false
		}
	}
	return true
}
