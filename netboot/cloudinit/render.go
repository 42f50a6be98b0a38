package cloudinit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/listener"
	"github.com/slipway/slipway/netboot/bootcfg"
)

// Unknown is the MAC of a request nobody could place; it still gets data.
const Unknown = "unknown"

// Machines finds the machine behind a MAC and hears that its cloud-init
// data was served.
type Machines interface {
	MachineByMAC(ctx context.Context, mac domain.MAC, door domain.Door) (domain.BootMachine, error)
	Owner(mac domain.MAC) (string, bool)
	Notify(ctx context.Context, mac domain.MAC, ev domain.Event)
}

// Config is where templates live and how profiles name them.
type Config struct {
	TemplatesDir string
	// Templates maps a profile name to its user-data template file,
	// relative to TemplatesDir.
	Templates      map[string]string
	DefaultProfile string
	LANIP          netip.Addr
	Logger         *slog.Logger
	// BootActions, if set, adds a deploying node's boot actions to its
	// user-data.
	BootActions BootActions
	// Token, if set, is a MAC's node token, which templates see as .Token.
	Token func(domain.MAC) string
}

// Vars are what a user-data template may use: the same as a profile's
// command line.
type Vars = bootcfg.Vars

// Renderer renders cloud-init data.
type Renderer struct {
	cfg       Config
	machines  Machines
	log       *slog.Logger
	templates templateCache
}

// New returns a renderer; templates are read when first used, and again
// when they change.
func New(cfg Config, machines Machines) *Renderer {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Renderer{cfg: cfg, machines: machines, log: cfg.Logger, templates: templateCache{byFile: map[string]parsedTemplate{}}}
}

// vars gathers what the templates see for mac ("" for an unplaced request).
func (r *Renderer) vars(ctx context.Context, mac domain.MAC, serverURL string) Vars {
	if mac == "" {
		return Vars{MAC: Unknown, MACSlug: Unknown, Hostname: "node-" + Unknown, Profile: r.cfg.DefaultProfile,
			ServerURL: serverURL, LANIP: r.cfg.LANIP.String()}
	}
	m, err := r.machines.MachineByMAC(ctx, mac, domain.DoorCloudInit)
	switch {
	case errors.Is(err, domain.ErrDiscoveryRefused):
		r.log.Debug("cloud-init: rendering for a MAC no machine has", "mac", mac, "error", err)
	case err != nil:
		r.log.Warn("cloud-init: machine lookup failed; rendering without its inventory", "mac", mac, "error", err)
	}
	v := bootcfg.MachineVars(mac, m, r.cfg.DefaultProfile, serverURL, r.cfg.LANIP)
	if r.cfg.Token != nil {
		v.Token = r.cfg.Token(mac)
	}
	return v
}

// UserData renders the machine's user-data, or the fallback when its
// template is wrong. A template that cannot be read for a passing reason
// (Slipway short of file descriptors while a site boots) is an error that
// listener.Shortage recognizes: the machine should ask again, not install
// with the fallback.
func (r *Renderer) UserData(ctx context.Context, mac domain.MAC, serverURL string) ([]byte, error) {
	v := r.vars(ctx, mac, serverURL)
	out, file, err := r.renderTemplate(v)
	if listener.Shortage(err) {
		return nil, fmt.Errorf("cloud-init template %s: %w", file, err) // the door logs it, once a minute
	}
	if err != nil {
		r.log.Warn("cloud-init: serving the fallback user-data", "template", file, "mac", v.MAC, "error", err)
		out = fallbackUserData(v)
	}
	out = r.addBootActions(ctx, v.MachineID, out)
	if mac != "" {
		r.machines.Notify(ctx, mac, domain.Event{Kind: domain.EventCloudInit, Cause: "cloud-init user-data served"})
	}
	return out, nil
}

// addBootActions adds a deploying machine's boot actions to its
// user-data; without them (none, or a failure, logged) it is as it was.
func (r *Renderer) addBootActions(ctx context.Context, machineID string, userData []byte) []byte {
	if r.cfg.BootActions == nil || machineID == "" {
		return userData
	}
	nc, ok, err := r.cfg.BootActions.DeployingContext(ctx, machineID)
	if err == nil && ok {
		var with []byte
		if with, err = withBootActions(userData, nc); err == nil {
			return with
		}
	}
	if err != nil {
		r.log.Warn("cloud-init: the machine's boot actions are left out", "machine_id", machineID, "error", err)
	}
	return userData
}

// renderTemplate renders the profile's template and checks the result.
func (r *Renderer) renderTemplate(v Vars) (out []byte, file string, err error) {
	name, ok := r.cfg.Templates[v.Profile]
	if !ok && strings.HasPrefix(v.Profile, domain.ReleaseProfile("")) {
		// An OS release carries no user-data: its hosts onboard as the
		// default profile's do.
		name, ok = r.cfg.Templates[r.cfg.DefaultProfile]
	}
	if v.Profile == "" || !ok {
		return nil, "(none)", fmt.Errorf("no profile %q with a cloud-init template; set default_profile or the machine's profile", v.Profile)
	}
	file = filepath.Join(r.cfg.TemplatesDir, name)
	t, err := r.templates.get(file)
	if err != nil {
		return nil, file, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return nil, file, err
	}
	return b.Bytes(), file, CheckUserData(b.Bytes())
}

// CheckUserData says whether b is what cloud-init takes as cloud-config:
// a "#cloud-config" first line, then a YAML mapping.
func CheckUserData(b []byte) error {
	first, _, _ := bytes.Cut(b, []byte("\n"))
	if strings.TrimSpace(string(first)) != "#cloud-config" {
		return fmt.Errorf("rendered user-data starts with %q, not #cloud-config", truncate(string(first), 40))
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("rendered user-data is not a YAML mapping: %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// fallbackUserData is the least an installer needs: its hostname, an SSH
// server, and a heartbeat that tells the operator the fallback was used.
// It is built as data, not text, so it is valid YAML whatever the values.
// The reason (a template's path, its error) stays in the log: the node
// is told only that the fallback is what it got.
func fallbackUserData(v Vars) []byte {
	heartbeat := fmt.Sprintf(`curl -fsS -X POST -H 'Content-Type: application/json' -d '{"mac":"%s","token":"%s","stage":"cloud-init","phase":"running","detail":"fallback user-data: the template failed"}' %s/heartbeat || true`,
		v.MAC, v.Token, v.ServerURL)
	doc := map[string]any{
		"hostname":          v.Hostname,
		"preserve_hostname": false,
		"packages":          []string{"openssh-server"},
		"runcmd":            [][]string{{"sh", "-c", heartbeat}},
	}
	body, _ := yaml.Marshal(doc) // plain values: cannot fail
	return append([]byte("#cloud-config\n# Slipway fallback user-data: the profile's template failed (why is in Slipway's log)\n"), body...)
}

// MetaData is NoCloud's meta-data: the instance id is the machine id, so a
// machine reinstalled under a new id runs cloud-init afresh.
func (r *Renderer) MetaData(ctx context.Context, mac domain.MAC, serverURL string) []byte {
	v := r.vars(ctx, mac, serverURL)
	id := v.MachineID
	if id == "" {
		id = "slipway-" + v.MACSlug
	}
	body, _ := yaml.Marshal(map[string]string{"instance-id": id, "local-hostname": v.Hostname})
	return body
}

// VendorData is empty cloud-config: the profile's user-data says it all.
func (r *Renderer) VendorData() []byte { return []byte("#cloud-config\n{}\n") }

// NetworkConfig is network config version 2: DHCP on the NIC with the
// machine's MAC (every Ethernet NIC when the MAC is unknown).
func (r *Renderer) NetworkConfig(ctx context.Context, mac domain.MAC) []byte {
	match := map[string]any{"name": "e*"}
	if mac != "" {
		match = map[string]any{"macaddress": string(mac)}
	}
	body, _ := yaml.Marshal(map[string]any{
		"version":   2,
		"ethernets": map[string]any{"provisioning": map[string]any{"match": match, "dhcp4": true}},
	})
	return body
}
