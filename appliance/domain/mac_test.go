package domain

import (
	"strings"
	"testing"
)

func TestParseMAC(t *testing.T) {
	tests := []struct {
		in      string
		want    MAC
		wantErr bool
	}{
		{in: "52:54:00:12:34:56", want: "52:54:00:12:34:56"},
		{in: "52:54:00:AB:CD:EF", want: "52:54:00:ab:cd:ef"},
		{in: "52-54-00-ab-cd-ef", want: "52:54:00:ab:cd:ef"},
		{in: "5254.00ab.cdef", want: "52:54:00:ab:cd:ef"},
		{in: "525400ABCDEF", want: "52:54:00:ab:cd:ef"},
		{in: " 52:54:00:ab:cd:ef\n", want: "52:54:00:ab:cd:ef"},
		{in: "", wantErr: true},
		{in: "52:54:00:ab:cd", wantErr: true},
		{in: "zz:54:00:ab:cd:ef", wantErr: true},
		{in: "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMAC(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseMAC(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("ParseMAC(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMACSlug(t *testing.T) {
	if got := MAC("52:54:00:ab:cd:ef").Slug(); got != "52-54-00-ab-cd-ef" {
		t.Fatalf("Slug() = %q", got)
	}
}

func FuzzParseMAC(f *testing.F) {
	for _, s := range []string{"52:54:00:12:34:56", "5254.0012.3456", "525400123456", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMAC(s)
		if err != nil {
			return
		}
		// The canonical form must be a fixed point.
		again, err := ParseMAC(string(m))
		if err != nil || again != m {
			t.Fatalf("ParseMAC(%q) = %q, reparsed to %q, %v", s, m, again, err)
		}
	})
}

func TestSanitizeHostname(t *testing.T) {
	long := strings.Repeat("a", 70)
	for in, want := range map[string]string{
		"node-01":                   "node-01",
		"node\x00-01\n":             "node--01",
		"rm -rf /; echo pwned":      "rm--rf----echo-pwned",
		"-.web..01.":                "web.01",
		"\x1b[31mred":               "31mred",
		"":                          "",
		"---":                       "",
		long + ".b":                 strings.Repeat("a", 63) + ".b",
		"node_with_underscores.lab": "node-with-underscores.lab",
		strings.Repeat("abc.", 100): strings.TrimSuffix(strings.Repeat("abc.", 63), "."),
		"ünïcödé":                   "n-c-d",
	} {
		got := SanitizeHostname(in)
		if got != want {
			t.Errorf("SanitizeHostname(%q) = %q, want %q", in, got, want)
		}
		if got != "" && !ValidHostname(got) {
			t.Errorf("SanitizeHostname(%q) = %q, not a valid hostname", in, got)
		}
	}
}
