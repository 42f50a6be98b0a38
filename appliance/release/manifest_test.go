package release

import (
	"strings"
	"testing"
)

const goodManifest = `release_id: slipway-os-1.2.0
sw_version: 1.2.0
summary: Slipway OS 1.2
boot:
  kernel: boot/vmlinuz
  initrd: boot/initrd.img
  cmdline: console=ttyS0
`

func TestParseManifest(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		says       []string // "" when valid
	}{
		{"good", goodManifest, nil},
		{"unknown field", goodManifest + "colour: blue\n", []string{"field colour not found"}},
		{"bad id and version", strings.Replace(strings.Replace(goodManifest, "slipway-os-1.2.0", "../etc", 1), "1.2.0\n", "1.2\n", 1),
			[]string{`release_id: "../etc"`, `sw_version: "1.2" is not MM.mm.pp`}},
		{"bad status", goodManifest + "status: GA\n", []string{`status: "GA" is not REL, DEV or OBS`}},
		{"no kernel", strings.Replace(goodManifest, "  kernel: boot/vmlinuz\n", "", 1), []string{"boot.kernel: is required"}},
		{"escaping paths", strings.Replace(strings.Replace(goodManifest, "boot/vmlinuz", "../vmlinuz", 1), "boot/initrd.img", "/initrd", 1) + "  rootfs: a/../../b\n",
			[]string{`boot.kernel: "../vmlinuz"`, `boot.initrd: "/initrd"`, `boot.rootfs: "a/../../b"`}},
		{"bad requires", goodManifest + "requires: ['a b']\n", []string{`requires: "a b"`}},
		{"not yaml", "{", []string{"release.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tc.text))
			if tc.says == nil {
				if err != nil {
					t.Fatal(err)
				}
				if m.Status != "REL" || !*m.RebootRequired || m.MajorMinor() != "1.2" {
					t.Errorf("defaults: %+v", m)
				}
				return
			}
			for _, s := range tc.says {
				if err == nil || !strings.Contains(err.Error(), s) {
					t.Errorf("got %v, want it to say %q", err, s)
				}
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(goodManifest))
	f.Add([]byte("release_id: a\nsw_version: 1.0.0\nboot: {kernel: k, initrd: i, rootfs: r}\nrequires: [x]\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		m, err := ParseManifest(text)
		if err != nil {
			return
		}
		// A manifest that passes names only files inside the release and
		// an id that is safe as a directory name.
		for _, p := range []string{m.Boot.Kernel, m.Boot.Initrd} {
			if !insidePath(p) || strings.Contains(p, "..") && strings.HasPrefix(p, "..") {
				t.Fatalf("accepted boot path %q", p)
			}
		}
		if strings.ContainsAny(m.ReleaseID, "/\\") || m.ReleaseID == "." || m.ReleaseID == ".." {
			t.Fatalf("accepted release id %q", m.ReleaseID)
		}
	})
}
