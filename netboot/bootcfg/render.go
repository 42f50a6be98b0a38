package bootcfg

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"text/template"

	"github.com/slipway/slipway/appliance/domain"
)

// Profile is what a machine boots into.
type Profile struct {
	Name    string
	Kernel  string // path under the assets directory, or an http(s) URL
	Initrd  string
	Cmdline string // a Go text/template; see Vars
}

// Machines finds the machine that owns a MAC (an empty Profile means the
// default profile) and hears that its boot configuration was served.
type Machines interface {
	MachineByMAC(ctx context.Context, mac domain.MAC, door domain.Door) (domain.BootMachine, error)
	Notify(ctx context.Context, mac domain.MAC, ev domain.Event)
}

// Vars are what a profile's templates (its command line, its cloud-init
// user-data) may use.
type Vars struct {
	MAC       string // 52:54:00:12:34:56
	MACSlug   string // 52-54-00-12-34-56
	MachineID string
	Hostname  string // the inventory hostname, or one generated from the MAC
	Profile   string
	ServerURL string // http://10.88.0.1:80, no trailing slash
	LANIP     string
	// Inventory fields; empty when the inventory has none.
	RackID, RackName, TrayType, BMC string
	Tray                            int
	// TrayKnown says whether Tray is a slot somebody gave: a node of a
	// Drydock design sits in a rack, in no known tray, and Tray is 0.
	TrayKnown bool
	// Token is the machine's node token: a request that carries it is
	// taken as the machine's own from any address (netboot.caller_check).
	Token string
}

// MachineVars are the template variables of machine m booting from mac:
// its hostname or one generated from the MAC, its profile or defaultProfile.
func MachineVars(mac domain.MAC, m domain.BootMachine, defaultProfile, serverURL string, lanIP netip.Addr) Vars {
	_, trayKnown := m.TrayPlace()
	return Vars{TrayKnown: trayKnown, MAC: string(mac), MACSlug: mac.Slug(), MachineID: m.ID, Hostname: cmp.Or(m.Hostname, domain.GeneratedHostname(mac)),
		Profile: cmp.Or(m.BootProfile(), defaultProfile), ServerURL: serverURL, LANIP: lanIP.String(),
		RackID: m.RackID, RackName: m.RackName, Tray: m.Tray, TrayType: m.TrayType, BMC: m.BMCEndpoint}
}

// MoreProfiles finds a profile the configuration does not list (an OS
// release's, "release:<id>").
type MoreProfiles func(ctx context.Context, name string) (Profile, bool)

// Renderer renders boot configurations.
type Renderer struct {
	machines       Machines
	profiles       map[string]Profile
	more           MoreProfiles
	token          func(domain.MAC) string
	callers        Callers
	defaultProfile string
	serverURL      string
	lanIP          netip.Addr
	cmdlines       map[string]*template.Template
}

// New checks every profile's command line template once, so that a broken
// template is a start-up error rather than a failed boot.
func New(machines Machines, profiles map[string]Profile, defaultProfile string, lanIP netip.Addr, httpPort int) (*Renderer, error) {
	r := &Renderer{machines: machines, profiles: profiles, defaultProfile: defaultProfile, lanIP: lanIP,
		serverURL: "http://" + netip.AddrPortFrom(lanIP, uint16(httpPort)).String(), cmdlines: map[string]*template.Template{}}
	for name, p := range profiles {
		t, err := template.New(name).Option("missingkey=error").Parse(p.Cmdline)
		if err != nil {
			return nil, fmt.Errorf("profiles.%s.cmdline: %w", name, err)
		}
		// Try it once, so that a misspelt variable fails here, not at boot.
		if err := t.Execute(new(bytes.Buffer), Vars{}); err != nil {
			return nil, fmt.Errorf("profiles.%s.cmdline: %w", name, err)
		}
		r.cmdlines[name] = t
	}
	return r, nil
}

// ErrNoProfile means the machine has no profile and there is no default.
var ErrNoProfile = errors.New("no boot profile")

// plan is everything a script needs, resolved.
type plan struct {
	Vars
	Kernel, Initrd, Cmdline string
}

// Callers says whether a request that names a MAC comes from its machine:
// nil, or a *domain.CallerRefusedError.
type Callers interface {
	Prove(mac domain.MAC, from domain.Caller, door domain.Door) error
}

// WithCallers has the renderer serve a machine's boot config only to that
// machine (netboot.caller_check).
func (r *Renderer) WithCallers(c Callers) *Renderer {
	r.callers = c
	return r
}

func (r *Renderer) prove(mac domain.MAC, from domain.Caller) error {
	if r.callers == nil {
		return nil
	}
	return r.callers.Prove(mac, from, domain.DoorBoot)
}

// WithTokens has the renderer give templates each machine's node token.
func (r *Renderer) WithTokens(token func(domain.MAC) string) *Renderer {
	r.token = token
	return r
}

// WithMoreProfiles has the renderer look up the profiles its
// configuration does not list with more.
func (r *Renderer) WithMoreProfiles(more MoreProfiles) *Renderer {
	r.more = more
	return r
}

func (r *Renderer) plan(ctx context.Context, mac domain.MAC, m domain.BootMachine) (plan, error) {
	pl := plan{Vars: MachineVars(mac, m, r.defaultProfile, r.serverURL, r.lanIP)}
	if r.token != nil {
		pl.Token = r.token(mac)
	}
	name := pl.Profile
	p, ok := r.profiles[name]
	cmdlineTemplate := r.cmdlines[name]
	if !ok && r.more != nil {
		if p, ok = r.more(ctx, name); ok {
			var err error
			if cmdlineTemplate, err = template.New(name).Option("missingkey=error").Parse(p.Cmdline); err != nil {
				return plan{}, fmt.Errorf("profile %s's cmdline: %w", name, err)
			}
		}
	}
	if !ok {
		return plan{}, fmt.Errorf("machine %s (%s): %w %q (set default_profile or the machine's profile)", m.ID, mac, ErrNoProfile, name)
	}
	var cmdline bytes.Buffer
	if err := cmdlineTemplate.Execute(&cmdline, pl.Vars); err != nil {
		return plan{}, fmt.Errorf("profiles.%s.cmdline: %w", name, err)
	}
	pl.Cmdline = strings.Join(strings.Fields(cmdline.String()), " ")
	pl.Kernel, pl.Initrd = r.assetURL(p.Kernel), r.assetURL(p.Initrd)
	return pl, nil
}

func (r *Renderer) assetURL(p string) string {
	if p == "" || strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://") {
		return p
	}
	return r.serverURL + "/assets/" + strings.TrimPrefix(p, "/")
}

// ipxeScript names the initrd and passes initrd=initrd on the command line:
// a kernel's EFI stub started by iPXE finds its initrd by that name (iPXE
// before 2021 has no other way to hand it over); BIOS kernels ignore it.
var ipxeScript = template.Must(template.New("ipxe").Parse(`#!ipxe
# Slipway: machine {{.MachineID}} ({{.MAC}}), profile {{.Profile}}
echo Slipway: booting {{.MachineID}} with profile {{.Profile}}
kernel {{.Kernel}}{{if .Initrd}} initrd=initrd{{end}} {{.Cmdline}}
{{- if .Initrd}}
initrd --name initrd {{.Initrd}}
{{- end}}
boot
`))

// ipxeLocal sends a machine that is not to install to its local disk:
// exit hands back to the firmware, which boots the next entry.
var ipxeLocal = template.Must(template.New("ipxe-local").Parse(`#!ipxe
# Slipway: machine {{.ID}} keeps its disk: {{.Why}}
echo Slipway: {{.ID}}: {{.Why}}
exit
`))

// IPXE renders the iPXE script for mac, asked for by from. Without a MAC,
// it renders a script that asks again with iPXE's own ${mac} filled in. A
// machine that is not to install gets a script that boots its local disk.
// A caller that is not mac's machine gets no script and a
// *domain.CallerRefusedError.
func (r *Renderer) IPXE(ctx context.Context, mac domain.MAC, from domain.Caller) ([]byte, error) {
	if mac == "" {
		return []byte("#!ipxe\nchain " + r.serverURL + "/boot.ipxe?mac=${mac}\n"), nil
	}
	if err := r.prove(mac, from); err != nil {
		return nil, err
	}
	m, err := r.machines.MachineByMAC(ctx, mac, domain.DoorBoot)
	if err == nil && m.Action != domain.BootInstall {
		return render(ipxeLocal, m)
	}
	var pl plan
	if err == nil {
		pl, err = r.plan(ctx, mac, m)
	}
	if err != nil {
		// iPXE shows the message and falls through to the next boot device.
		return []byte(fmt.Sprintf("#!ipxe\necho Slipway: %s\necho Falling back to the next boot device.\nsleep 5\nexit 1\n", oneLine(err.Error()))), err
	}
	var b bytes.Buffer
	if err = ipxeScript.Execute(&b, pl); err == nil {
		r.machines.Notify(ctx, mac, domain.Event{Kind: domain.EventBootConfig, Cause: "iPXE script served"})
	}
	return b.Bytes(), err
}

// grubConfig loads the profile over HTTP where GRUB has it; Debian's
// signed GRUB has no HTTP built in and, under Secure Boot, loads no module,
// so the box's own assets come over TFTP then (Over is set when the kernel
// and initrd are the box's, not URLs elsewhere). It tries the kernel
// itself: GRUB 2.06's "if insmod http" is true when the module is missing.
var grubConfig = template.Must(template.New("grub").Parse(`# Slipway: machine {{.MachineID}} ({{.MAC}}), profile {{.Profile}}
set timeout=1
menuentry 'Slipway: {{.MachineID}} ({{.Profile}})' {
	echo 'Loading {{.Kernel}}'
{{- if .Over}}
	if linux {{.Over.HTTP}}{{.Over.Kernel}} {{.GrubCmdline}}; then
{{- if .Initrd}}
		initrd {{.Over.HTTP}}{{.Over.Initrd}}
{{- end}}
	else
		echo 'This GRUB has no HTTP: loading over TFTP'
		linux {{.Over.TFTP}}{{.Over.Kernel}} {{.GrubCmdline}}
{{- if .Initrd}}
		initrd {{.Over.TFTP}}{{.Over.Initrd}}
{{- end}}
	fi
{{- else}}
	linux {{.GrubKernel}} {{.GrubCmdline}}
{{- if .Initrd}}
	initrd {{.GrubInitrd}}
{{- end}}
{{- end}}
}
`))

// grubAssets is where GRUB finds the box's own kernel and initrd: the
// device over HTTP or over TFTP, and their paths on either.
type grubAssets struct {
	HTTP, TFTP     string // (http,10.88.0.1:80), (tftp,10.88.0.1)
	Kernel, Initrd string // /assets/…
}

// ownAssets is where GRUB finds pl's kernel and initrd when both are the
// box's assets; nil when either is a URL elsewhere (HTTP only, then).
func (r *Renderer) ownAssets(pl plan) *grubAssets {
	prefix := r.serverURL + "/assets/"
	kernel, ok := strings.CutPrefix(pl.Kernel, prefix)
	initrd, initrdOK := strings.CutPrefix(pl.Initrd, prefix)
	if !ok || pl.Initrd != "" && !initrdOK {
		return nil
	}
	a := &grubAssets{HTTP: grubDevice(r.serverURL), TFTP: "(tftp," + r.lanIP.String() + ")", Kernel: "/assets/" + kernel}
	if pl.Initrd != "" {
		a.Initrd = "/assets/" + initrd
	}
	return a
}

// grubLocal sends a machine that is not to install to its local disk: exit
// leaves GRUB, and the firmware boots its next entry.
var grubLocal = template.Must(template.New("grub-local").Parse(`# Slipway: machine {{.ID}} keeps its disk: {{.Why}}
echo 'Slipway: {{.ID}}: booting the local disk'
exit
`))

// GRUB renders GRUB's per-MAC configuration. GRUB fetches over HTTP with
// (http,host:port)/path device syntax and needs the command line quoted.
// A machine that is not to install gets a config that boots its local disk.
func (r *Renderer) GRUB(ctx context.Context, mac domain.MAC) ([]byte, error) {
	m, err := r.machines.MachineByMAC(ctx, mac, domain.DoorBoot)
	if err != nil {
		return nil, err
	}
	if m.Action != domain.BootInstall {
		return render(grubLocal, m)
	}
	pl, err := r.plan(ctx, mac, m)
	if err != nil {
		return nil, err
	}
	data := struct {
		plan
		GrubKernel, GrubInitrd, GrubCmdline string
		Over                                *grubAssets
	}{plan: pl, GrubKernel: grubPath(pl.Kernel), GrubInitrd: grubPath(pl.Initrd), GrubCmdline: grubQuote(pl.Cmdline), Over: r.ownAssets(pl)}
	var b bytes.Buffer
	if err = grubConfig.Execute(&b, data); err == nil {
		r.machines.Notify(ctx, mac, domain.Event{Kind: domain.EventBootConfig, Cause: "GRUB config served"})
	}
	return b.Bytes(), err
}

func render(t *template.Template, data any) ([]byte, error) {
	var b bytes.Buffer
	err := t.Execute(&b, data)
	return b.Bytes(), err
}

// Lookup serves a rendered file by the name a loader asks for, on TFTP or
// HTTP, to from. ok is false when name is not a rendered file (serve the
// file tree). A per-MAC file asked for by another than its machine is a
// *domain.CallerRefusedError.
//
//   - ".../grub.cfg-01-<mac>" (any directory, any MAC spelling): the
//     machine's GRUB config.
//   - ".../grub.cfg": a config that loads the per-MAC one by GRUB's own
//     ${net_default_mac}, for GRUB images (Debian's signed grubnet*) whose
//     built-in prefix we do not choose. It asks where GRUB found it (its
//     $prefix), over what GRUB fetched it with: a signed GRUB may have
//     TFTP and no HTTP.
func (r *Renderer) Lookup(ctx context.Context, name string, from domain.Caller) (content []byte, ok bool, err error) {
	if mac, perMAC, err := configMAC(name); perMAC {
		if err == nil {
			err = r.prove(mac, from)
		}
		if err != nil {
			return nil, true, err
		}
		content, err = r.GRUB(ctx, mac)
		return content, true, err
	}
	if name[strings.LastIndexByte(name, '/')+1:] == "grub.cfg" {
		return []byte("# Slipway: load this machine's own config\nset timeout=1\nconfigfile ${prefix}/grub.cfg-01-${net_default_mac}\n"), true, nil
	}
	return nil, false, nil
}

// grubPath turns http://host:port/path into GRUB's (http,host:port)/path.
func grubPath(url string) string {
	rest, ok := strings.CutPrefix(url, "http://")
	if !ok {
		return url
	}
	_, path, _ := strings.Cut(rest, "/")
	return grubDevice(url) + "/" + path
}

// grubDevice is GRUB's (http,host:port) for http://host:port/….
func grubDevice(url string) string {
	host, _, _ := strings.Cut(strings.TrimPrefix(url, "http://"), "/")
	return "(http," + host + ")"
}

func grubQuote(s string) string {
	var parts []string
	for _, f := range strings.Fields(s) {
		parts = append(parts, "'"+strings.ReplaceAll(f, "'", `'\''`)+"'")
	}
	return strings.Join(parts, " ")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// configMAC is the MAC a per-MAC config name (".../grub.cfg-01-<mac>")
// is for: perMAC is false for any other name, err set when the MAC does
// not parse.
func configMAC(name string) (mac domain.MAC, perMAC bool, err error) {
	rest, found := strings.CutPrefix(name[strings.LastIndexByte(name, '/')+1:], "grub.cfg-01-")
	if !found {
		return "", false, nil
	}
	if mac, err = domain.ParseMAC(rest); err != nil {
		return "", true, fmt.Errorf("%s: %w", name, err)
	}
	return mac, true, nil
}
