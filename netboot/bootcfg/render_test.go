package bootcfg

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"text/template"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/store"
)

type fakeMachines map[domain.MAC]domain.BootMachine

func (f fakeMachines) Notify(context.Context, domain.MAC, domain.Event) {}

func (f fakeMachines) MachineByMAC(_ context.Context, mac domain.MAC, _ domain.Door) (domain.BootMachine, error) {
	m, ok := f[mac]
	if !ok {
		return m, store.ErrNotFound
	}
	return m, nil
}

func newRenderer(t *testing.T, defaultProfile string) *Renderer {
	t.Helper()
	r, err := New(fakeMachines{
		"52:54:00:00:00:01": {ID: "r1-t1", MachineInfo: domain.MachineInfo{Hostname: "node-1", Profile: "debian"}},
		"52:54:00:00:00:02": {ID: "mac-525400000002"},
		"52:54:00:00:00:03": {ID: "r1-t3", MachineInfo: domain.MachineInfo{Profile: "debian"}, BootPlan: domain.BootPlan{Action: domain.BootLocal, Why: "machine is ready: it boots its local disk"}},
		"52:54:00:00:00:04": {ID: "r1-t4", MachineInfo: domain.MachineInfo{Profile: "debian", ReleaseID: "os-2.0.0"}},
		"52:54:00:00:00:05": {ID: "r1-t5", MachineInfo: domain.MachineInfo{ReleaseID: "gone"}},
	}, map[string]Profile{
		"debian": {Name: "debian", Kernel: "debian/linux", Initrd: "debian/initrd.gz",
			Cmdline: "console=ttyS0 hostname={{.Hostname}} ds=nocloud-net;s={{.ServerURL}}/cloud-init/ mac={{.MACSlug}}"},
		"remote": {Name: "remote", Kernel: "http://10.88.0.9/vmlinuz", Cmdline: "quiet"},
	}, defaultProfile, netip.MustParseAddr("10.88.0.1"), 8080)
	if err != nil {
		t.Fatal(err)
	}
	// An OS release's profile, found when a machine boots it.
	return r.WithMoreProfiles(func(_ context.Context, name string) (Profile, bool) {
		if name != "release:os-2.0.0" {
			return Profile{}, false
		}
		return Profile{Name: name, Kernel: "releases/os-2.0.0/boot/vmlinuz", Initrd: "releases/os-2.0.0/boot/initrd.img",
			Cmdline: "console=ttyS0 root=live:{{.ServerURL}}/assets/releases/os-2.0.0/root.squashfs host={{.Hostname}}"}, true
	})
}

func TestIPXEScripts(t *testing.T) {
	r := newRenderer(t, "remote")
	tests := []struct {
		name string
		mac  domain.MAC
		want []string
	}{
		{"machine with a profile", "52:54:00:00:00:01", []string{
			"#!ipxe\n",
			"kernel http://10.88.0.1:8080/assets/debian/linux initrd=initrd console=ttyS0 hostname=node-1 ds=nocloud-net;s=http://10.88.0.1:8080/cloud-init/ mac=52-54-00-00-00-01\n",
			"initrd --name initrd http://10.88.0.1:8080/assets/debian/initrd.gz\n",
			"boot\n",
		}},
		{"discovered machine on the default profile", "52:54:00:00:00:02", []string{"kernel http://10.88.0.9/vmlinuz quiet\nboot\n"}},
		{"no MAC yet: ask iPXE for it", "", []string{"chain http://10.88.0.1:8080/boot.ipxe?mac=${mac}"}},
		{"a machine on an OS release boots the release, not its profile", "52:54:00:00:00:04", []string{
			"kernel http://10.88.0.1:8080/assets/releases/os-2.0.0/boot/vmlinuz initrd=initrd console=ttyS0 root=live:http://10.88.0.1:8080/assets/releases/os-2.0.0/root.squashfs host=node-525400000004\n",
			"initrd --name initrd http://10.88.0.1:8080/assets/releases/os-2.0.0/boot/initrd.img\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.IPXE(context.Background(), tt.mac, domain.Caller{})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(got), w) {
					t.Errorf("script lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestIPXEWithoutAProfileFallsThrough(t *testing.T) {
	r := newRenderer(t, "remote")
	// A machine whose release is gone from the box says which profile.
	if got, err := r.IPXE(context.Background(), "52:54:00:00:00:05", domain.Caller{}); !errors.Is(err, ErrNoProfile) || !strings.Contains(string(got), `no boot profile "release:gone"`) {
		t.Errorf("a release gone: %v\n%s", err, got)
	}
	r = newRenderer(t, "")
	got, err := r.IPXE(context.Background(), "52:54:00:00:00:02", domain.Caller{})
	if !errors.Is(err, ErrNoProfile) || !strings.Contains(string(got), "exit 1") {
		t.Fatalf("got %v:\n%s", err, got)
	}
}

func TestGRUBConfigByLookup(t *testing.T) {
	r := newRenderer(t, "")
	got, ok, err := r.Lookup(context.Background(), "/grub/grub.cfg-01-52-54-00-00-00-01", domain.Caller{})
	if !ok || err != nil {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	for _, w := range []string{
		"if linux (http,10.88.0.1:8080)/assets/debian/linux 'console=ttyS0' 'hostname=node-1' 'ds=nocloud-net;s=http://10.88.0.1:8080/cloud-init/' 'mac=52-54-00-00-00-01'; then",
		"initrd (http,10.88.0.1:8080)/assets/debian/initrd.gz\n\telse",
		"linux (tftp,10.88.0.1)/assets/debian/linux 'console=ttyS0'",
		"initrd (tftp,10.88.0.1)/assets/debian/initrd.gz\n\tfi",
	} {
		if !strings.Contains(string(got), w) {
			t.Errorf("grub.cfg lacks %q:\n%s", w, got)
		}
	}
	if got, ok, _ := r.Lookup(context.Background(), "debian-installer/amd64/grub/grub.cfg-01-52:54:00:00:00:01", domain.Caller{}); !ok || !strings.Contains(string(got), "r1-t1") {
		t.Errorf("colon MAC under another prefix: %s", got)
	}
	generic, ok, err := r.Lookup(context.Background(), "debian-installer/amd64/grub/x86_64-efi/grub.cfg", domain.Caller{})
	if !ok || err != nil || !strings.Contains(string(generic), "configfile ${prefix}/grub.cfg-01-${net_default_mac}") {
		t.Errorf("generic grub.cfg: %v %v\n%s", ok, err, generic)
	}
	// A kernel elsewhere than the box comes over HTTP only: TFTP is ours.
	remote, _, err := newRenderer(t, "remote").Lookup(context.Background(), "grub/grub.cfg-01-52-54-00-00-00-02", domain.Caller{})
	if err != nil || !strings.Contains(string(remote), "linux (http,10.88.0.9)/vmlinuz 'quiet'") || strings.Contains(string(remote), "tftp") {
		t.Errorf("a remote kernel's grub.cfg (%v):\n%s", err, remote)
	}
	if _, ok, _ := r.Lookup(context.Background(), "undionly.kpxe", domain.Caller{}); ok {
		t.Error("a plain file was taken for a rendered one")
	}
	if _, ok, err := r.Lookup(context.Background(), "grub/grub.cfg-01-nonsense", domain.Caller{}); !ok || err == nil {
		t.Errorf("a bad MAC: ok=%v err=%v", ok, err)
	}
}

func TestBrokenTemplateIsAStartUpError(t *testing.T) {
	for _, cmdline := range []string{"{{.Nope", "{{.Hostnme}}"} {
		_, err := New(fakeMachines{}, map[string]Profile{"x": {Cmdline: cmdline}}, "", netip.MustParseAddr("10.88.0.1"), 80)
		if err == nil || !strings.HasPrefix(err.Error(), "profiles.x.cmdline:") {
			t.Errorf("%q: got %v", cmdline, err)
		}
	}
}

// A machine that is not to install is sent to its local disk, by iPXE and
// by GRUB alike, and is never shown its installer.
func TestMachinesThatKeepTheirDiskBootIt(t *testing.T) {
	r := newRenderer(t, "debian")
	script, err := r.IPXE(context.Background(), "52:54:00:00:00:03", domain.Caller{})
	if err != nil || !strings.HasPrefix(string(script), "#!ipxe\n") || !strings.Contains(string(script), "\nexit\n") ||
		!strings.Contains(string(script), "machine is ready") || strings.Contains(string(script), "kernel") {
		t.Fatalf("iPXE script (%v):\n%s", err, script)
	}
	cfg, ok, err := r.Lookup(context.Background(), "grub/grub.cfg-01-52-54-00-00-00-03", domain.Caller{})
	if err != nil || !ok || !strings.Contains(string(cfg), "\nexit\n") || strings.Contains(string(cfg), "linux") {
		t.Fatalf("GRUB config (%v, %v):\n%s", ok, err, cfg)
	}
}

// onlyFrom lets one address speak for every MAC.
type onlyFrom netip.Addr

func (o onlyFrom) Prove(mac domain.MAC, from domain.Caller, _ domain.Door) error {
	if from.Addr != netip.Addr(o) {
		return &domain.CallerRefusedError{MAC: mac, From: from.Addr}
	}
	return nil
}

// A machine's script and config go to that machine alone, and carry its
// node token for the profile's command line to pass on.
func TestBootConfigsGoToTheirMachineOnly(t *testing.T) {
	node := netip.MustParseAddr("10.88.0.50")
	r := newRenderer(t, "debian").WithCallers(onlyFrom(node)).WithTokens(func(mac domain.MAC) string { return "tok-" + mac.Slug() })
	r.profiles["debian"] = Profile{Name: "debian", Kernel: "debian/linux", Cmdline: "slipway.token={{.Token}}"}
	r.cmdlines["debian"] = mustTemplate(t, "slipway.token={{.Token}}")
	stranger := domain.Caller{Addr: netip.MustParseAddr("10.88.0.66")}
	var refused *domain.CallerRefusedError
	if script, err := r.IPXE(context.Background(), "52:54:00:00:00:01", stranger); !errors.As(err, &refused) || script != nil {
		t.Fatalf("a stranger got the script: %q, %v", script, err)
	}
	if _, ok, err := r.Lookup(context.Background(), "grub/grub.cfg-01-52-54-00-00-00-01", stranger); !ok || !errors.As(err, &refused) {
		t.Fatalf("a stranger got the GRUB config: %v", err)
	}
	script, err := r.IPXE(context.Background(), "52:54:00:00:00:01", domain.Caller{Addr: node})
	if err != nil || !strings.Contains(string(script), "slipway.token=tok-52-54-00-00-00-01") {
		t.Fatalf("the machine's own script: %v\n%s", err, script)
	}
	// Without a MAC the script only asks again: nothing to refuse.
	if _, err := r.IPXE(context.Background(), "", stranger); err != nil {
		t.Fatal(err)
	}
}

func mustTemplate(t *testing.T, s string) *template.Template {
	t.Helper()
	tpl, err := template.New("t").Option("missingkey=error").Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// A template tells a slot somebody gave from a node placed in a rack only.
func TestMachineVarsSayWhetherTheTrayIsKnown(t *testing.T) {
	for _, tc := range []struct {
		name      string
		info      domain.MachineInfo
		tray      int
		trayKnown bool
	}{
		{"racked by the configuration", domain.MachineInfo{RackID: "r1", Tray: 2, TrayKnown: true}, 2, true},
		{"slot 0 is a slot", domain.MachineInfo{RackID: "r1", Tray: 0, TrayKnown: true}, 0, true},
		{"a node of a design", domain.MachineInfo{RackID: "r9"}, 0, false},
		{"in no rack", domain.MachineInfo{}, 0, false},
	} {
		v := MachineVars("52:54:00:00:00:01", domain.BootMachine{ID: "m1", MachineInfo: tc.info}, "default", "http://10.88.0.1", netip.MustParseAddr("10.88.0.1"))
		if v.Tray != tc.tray || v.TrayKnown != tc.trayKnown {
			t.Errorf("%s: .Tray %d, .TrayKnown %v; want %d, %v", tc.name, v.Tray, v.TrayKnown, tc.tray, tc.trayKnown)
		}
	}
}
