package testbed

import "testing"

func TestParseIPXE(t *testing.T) {
	tests := []struct {
		script, kernel, initrd string
	}{
		{"#!ipxe\nkernel http://a/k quiet\ninitrd http://a/i\nboot\n", "http://a/k", "http://a/i"},
		{"#!ipxe\nkernel http://a/k initrd=initrd x\ninitrd --name initrd http://a/i\nboot\n", "http://a/k", "http://a/i"},
		{"#!ipxe\necho no profile\nexit 1\n", "", ""},
	}
	for _, tt := range tests {
		k, i := parseIPXE(tt.script)
		if k != tt.kernel || i != tt.initrd {
			t.Errorf("parseIPXE(%q) = %q, %q; want %q, %q", tt.script, k, i, tt.kernel, tt.initrd)
		}
	}
}
