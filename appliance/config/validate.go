package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/slipway/slipway/appliance/domain"
)

// Validate checks every field and returns Errors listing all problems found,
// not just the first, so an operator fixes a file in one pass.
func (c *Config) Validate() error {
	v := &fieldErrors{}
	c.validateLAN(v)
	c.validateImage(v)
	c.validateBasics(v)
	c.validatePorts(v)
	c.validateDHCP(v)
	c.validateNetboot(v)
	c.validateProfiles(v)
	c.validateMachines(v)
	c.validateBMCCredentials(v)
	c.validateBMCPolling(v)
	c.validateUsers(v)
	c.validateMQTTUsers(v)
	c.validateLifecycle(v)
	c.validateNICo(v)
	c.validateUSM(v)
	c.validateBridge(v)
	return v.err()
}

func (c *Config) validateUSM(v *fieldErrors) {
	for i, f := range c.USM.TrustedKeys {
		if st, err := os.Stat(f); err != nil || !st.Mode().IsRegular() {
			v.add(fmt.Sprintf("usm.trusted_keys[%d]", i), fmt.Sprintf("%q is not a readable file", f), "export the release signer's public key with gpg --export --armor KEYID > signer.asc and name that file")
		}
	}
	if n := c.USM.MaxUploadMiB; n < 1 || n > 1<<20 {
		v.add("usm.max_upload_mib", fmt.Sprintf("%d is out of range", n), "use 1 to 1048576 (MiB per uploaded file)")
	}
}

func (c *Config) validateNICo(v *fieldErrors) {
	if id := c.NICo.SiteID; id != "" {
		if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
			v.add("nico.site_id", fmt.Sprintf("%q is not a UUID", id), "give the site's id as NICo knows it, e.g. 6f1c2e8a-4b0d-4c47-9d1e-2a7f3c5b8e90 (uuidgen makes one)")
		}
	}
	if n := c.NICo.ParallelUpdates; n < 1 || n > 64 {
		v.add("nico.parallel_updates", fmt.Sprintf("%d is out of range", n), "use 1 to 64 (trays of one batch updated at once)")
	}
	if d := c.NICo.DPU.BufferTime; d < 0 || d > time.Hour {
		v.add("nico.dpu.buffer_time", fmt.Sprintf("%s is out of range", d), "use 0s to 1h (how long a host stays off after its DPUs were reinstalled)")
	}
}

// InterfaceAuto as lan.interface picks the host's only wired NIC.
const InterfaceAuto = "auto"

// StateInMemory as image.state_device keeps the image's state in RAM.
const StateInMemory = "memory"

var interfaceName = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,15}$`)

// InterfaceMAC says whether lan.interface names the NIC by its MAC
// address, and which (an error if it has a MAC's shape but is not one).
func InterfaceMAC(spec string) (mac domain.MAC, byMAC bool, err error) {
	if !isMAC(spec) {
		return "", false, nil
	}
	mac, err = domain.ParseMAC(spec)
	return mac, true, err
}

// isMAC: six colon-separated parts, which no interface name has.
func isMAC(spec string) bool { return strings.Count(spec, ":") == 5 }

func (c *Config) validateImage(v *fieldErrors) {
	d := c.Image.StateDevice
	if d != "" && d != StateInMemory && !strings.HasPrefix(d, "/dev/") && !strings.HasPrefix(d, "LABEL=") && !strings.HasPrefix(d, "UUID=") {
		v.add("image.state_device", fmt.Sprintf("%q names no device", d), `use /dev/..., LABEL=..., UUID=..., "memory", or leave it empty for the stick's own state partition`)
	}
}

func (c *Config) validateLAN(v *fieldErrors) {
	switch {
	case c.LAN.Interface == "":
		v.add("lan.interface", "is required", `name the provisioning NIC, e.g. "eth1" (see "ip link")`)
	case c.LAN.Interface == InterfaceAuto:
	case isMAC(c.LAN.Interface):
		if _, _, err := InterfaceMAC(c.LAN.Interface); err != nil {
			v.add("lan.interface", fmt.Sprintf("%q is not a MAC address", c.LAN.Interface), `write it as "ip link" shows it, e.g. 52:54:00:12:34:56`)
		}
	case !interfaceName.MatchString(c.LAN.Interface):
		v.add("lan.interface", fmt.Sprintf("%q is not a network interface name", c.LAN.Interface), `use the name "ip link" shows, e.g. "eth1", its MAC address, or "auto"`)
	}
	if c.LAN.Address == "" {
		v.add("lan.address", "is required", "give the appliance's own IP with its prefix length, e.g. 10.88.0.1/24")
		return
	}
	p, err := netip.ParsePrefix(c.LAN.Address)
	if err != nil {
		fix := "write it as an address with its prefix length, e.g. 10.88.0.1/24"
		if a, aerr := netip.ParseAddr(c.LAN.Address); aerr == nil {
			fix = fmt.Sprintf("add the prefix length, e.g. %s/24", a)
		}
		v.add("lan.address", fmt.Sprintf("%q is not a CIDR address", c.LAN.Address), fix)
		return
	}
	if !p.Addr().Is4() {
		v.add("lan.address", fmt.Sprintf("%s is not IPv4", p), "netboot needs DHCPv4: use an IPv4 address such as 10.88.0.1/24")
		return
	}
	if p.Bits() < 31 && (p.Addr() == p.Masked().Addr() || p.Addr() == domain.BroadcastAddr(p)) {
		v.add("lan.address", fmt.Sprintf("%s is the network or broadcast address of its subnet", p), fmt.Sprintf("use a host address such as %s/%d", p.Masked().Addr().Next(), p.Bits()))
		return
	}
	c.lanPrefix = p
}

func (c *Config) validateBasics(v *fieldErrors) {
	if c.DataDir == "" || !path.IsAbs(c.DataDir) {
		v.add("data_dir", fmt.Sprintf("%q is not an absolute path", c.DataDir), "use a directory such as /var/lib/slipway")
	}
	if c.TFTP.Root != "" && !path.IsAbs(c.TFTP.Root) {
		v.add("tftp.root", fmt.Sprintf("%q is not an absolute path", c.TFTP.Root), "use an absolute directory, or leave it empty for <data_dir>/tftp")
	}
	if m, err := ParseMemoryLimit(c.MemoryLimit); err != nil {
		v.add("memory_limit", err.Error(), "use auto (three quarters of the box's memory), off, or a size such as 768MiB")
	} else {
		c.memory = m
	}
	oneOf(v, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf(v, "log.format", c.Log.Format, "text", "json")
	positive(v, "http.shutdown_grace", c.HTTP.ShutdownGrace)
	if c.HTTP.SessionTTL < 5*time.Minute || c.HTTP.SessionTTL > 30*24*time.Hour {
		v.add("http.session_ttl", fmt.Sprintf("%s is out of range", c.HTTP.SessionTTL), "use 5m to 720h")
	}
	if n := c.HTTP.MaxConnections; n < 16 || n > 1<<20 {
		v.add("http.max_connections", fmt.Sprintf("%d is out of range", n), "use 16 to 1048576")
	}
	if n := c.HTTP.MaxConnectionsPerAddress; n < 4 || n > c.HTTP.MaxConnections {
		v.add("http.max_connections_per_address", fmt.Sprintf("%d is out of range", n), fmt.Sprintf("use 4 to http.max_connections (%d)", c.HTTP.MaxConnections))
	}
	positive(v, "store.busy_timeout", c.Store.BusyTimeout)
	oneOf(v, "store.sync", c.Store.Sync, "full", "normal")
}

func (c *Config) validatePorts(v *fieldErrors) {
	port(v, "http.port", c.HTTP.Port, false)
	port(v, "tftp.port", c.TFTP.Port, false)
	port(v, "mqtt.port", c.MQTT.Port, false)
	port(v, "mqtt.websocket_port", c.MQTT.WebSocketPort, true)
	c.validateMQTTLimits(v)
	port(v, "dhcp.port", c.DHCP.Port, false)
	port(v, "usm.port", c.USM.Port, true)
	port(v, "https.port", c.HTTPS.Port, true)
	// TCP listeners share the LAN IP, so their ports must differ.
	tcp := map[int]string{}
	for _, p := range []struct {
		field string
		port  int
	}{{"http.port", c.HTTP.Port}, {"mqtt.port", c.MQTT.Port}, {"mqtt.websocket_port", c.MQTT.WebSocketPort}, {"usm.port", c.USM.Port}, {"https.port", c.HTTPS.Port}} {
		if p.port == 0 {
			continue
		}
		if other, dup := tcp[p.port]; dup {
			v.add(p.field, fmt.Sprintf("port %d is already used by %s", p.port, other), "give each TCP listener its own port")
		}
		tcp[p.port] = p.field
	}
	if c.TFTP.Port == c.DHCP.Port && c.DHCP.Mode != "off" {
		v.add("tftp.port", fmt.Sprintf("port %d is already used by dhcp.port", c.TFTP.Port), "TFTP is 69 and DHCP 67 on a real LAN")
	}
}

func (c *Config) validateDHCP(v *fieldErrors) {
	oneOf(v, "dhcp.mode", c.DHCP.Mode, "full", "proxy", "off")
	oneOf(v, "netboot.unknown_machines", c.Netboot.UnknownMachines, "install", "local", "ignore")
	oneOf(v, "netboot.caller_check", c.Netboot.CallerCheck, string(domain.CallerAddress), string(domain.CallerOff))
	c.validateDiscovery(v)
	c.validateHTTPS(v)
	c.validateClientLimits(v)
	if c.DHCP.IgnoreUnknown && c.Netboot.UnknownMachines == "local" {
		v.add("dhcp.ignore_unknown", `true says unknown machines get no answer, but netboot.unknown_machines says "local"`,
			"drop dhcp.ignore_unknown (it is the older spelling of netboot.unknown_machines: ignore)")
	}
	if c.DHCP.Mode != "full" {
		if len(c.DHCP.Subnets) > 0 {
			v.add("dhcp.subnets", fmt.Sprintf("relayed subnets need dhcp.mode full, not %q", c.DHCP.Mode), "set dhcp.mode: full, or remove dhcp.subnets")
		}
		return
	}
	if t := c.DHCP.CacheThreshold; t < 0 || t >= 1 {
		v.add("dhcp.cache_threshold", fmt.Sprintf("%g is out of range", t), "use 0 (write every renewal) up to 0.99; 0.25 is the default")
	}
	if c.DHCP.LeaseTime < time.Minute {
		v.add("dhcp.lease_time", fmt.Sprintf("%s is too short", c.DHCP.LeaseTime), "use at least 1m; 1h is a good default")
	}
	c.validatePool(v, poolFields{at: "dhcp", network: c.lanPrefix, where: "the LAN", fix: "lan.address's subnet",
		rng: c.DHCP.Range, router: c.DHCP.Router, reservations: c.DHCP.Reservations, own: c.LANIP(),
		dns: c.DHCP.DNS, ntp: c.DHCP.NTP, domain: c.DHCP.Domain})
	c.validateSubnets(v)
}

// archNames are the client-architecture names netboot.boot_files may map.
var archNames = []string{"bios", "uefi-x64", "uefi-arm64", "uefi-x64-http", "uefi-arm64-http"}

func (c *Config) validateNetboot(v *fieldErrors) {
	for _, arch := range sortedKeys(c.Netboot.BootFiles) {
		at := "netboot.boot_files." + arch
		if !slices.Contains(archNames, arch) {
			v.add(at, "unknown client architecture", "use one of "+strings.Join(archNames, ", "))
		}
		relativePath(v, at, c.Netboot.BootFiles[arch])
	}
}

var slug = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

func (c *Config) validateProfiles(v *fieldErrors) {
	for _, name := range sortedKeys(c.Profiles) {
		p, at := c.Profiles[name], "profiles."+name
		if !slug.MatchString(name) {
			v.add(at, fmt.Sprintf("%q is not a usable profile name", name), "use letters, digits, '.', '_' and '-'")
		}
		if p.Kernel == "" {
			v.add(at+".kernel", "is required", "name the kernel file under <data_dir>/assets or give an http:// URL on the LAN")
		}
		if p.CloudInit != "" {
			relativePath(v, at+".cloud_init", p.CloudInit)
		}
	}
	if c.DefaultProfile != "" {
		c.knownProfile(v, "default_profile", c.DefaultProfile)
	}
}

func (c *Config) knownProfile(v *fieldErrors, at, name string) {
	if _, ok := c.Profiles[name]; ok {
		return
	}
	fix := "define it under profiles:, with its kernel, initrd and cmdline"
	if len(c.Profiles) > 0 {
		fix = "define it under profiles: or use one of: " + strings.Join(sortedKeys(c.Profiles), ", ")
	}
	v.add(at, fmt.Sprintf("profile %q is not defined", name), fix)
}

func (c *Config) validateMachines(v *fieldErrors) {
	ids, macs, bmcs := map[string]string{}, map[domain.MAC]string{}, map[string]string{}
	for i, m := range c.Machines {
		at := fmt.Sprintf("machines[%d]", i)
		switch {
		case m.ID == "":
			v.add(at+".id", "is required", "give every machine a unique id, e.g. its serial number")
		case !slug.MatchString(m.ID):
			v.add(at+".id", fmt.Sprintf("%q is not a usable machine id", m.ID), "use letters, digits, '.', '_' and '-' (it becomes part of MQTT topics)")
		default:
			if other, dup := ids[m.ID]; dup {
				v.add(at+".id", fmt.Sprintf("%q is already used by %s", m.ID, other), "machine ids must be unique")
			}
			ids[m.ID] = at
		}
		if len(m.MACs) == 0 {
			v.add(at+".macs", "is empty", "list the MAC of at least one NIC the machine boots from")
		}
		for j, s := range m.MACs {
			mp := fmt.Sprintf("%s.macs[%d]", at, j)
			if mac, ok := parseMAC(v, mp, s); ok {
				if other, dup := macs[mac]; dup {
					v.add(mp, fmt.Sprintf("%s already belongs to %s", mac, other), "a MAC identifies one machine only")
				}
				macs[mac] = at
			}
		}
		if m.Hostname != "" && !domain.ValidHostname(m.Hostname) {
			v.add(at+".hostname", fmt.Sprintf("%q is not a valid hostname", m.Hostname), "use letters, digits and '-'")
		}
		if m.Profile != "" {
			c.knownProfile(v, at+".profile", m.Profile)
		}
		c.validateRack(v, at+".rack", m.Rack)
		c.validateBMC(v, at+".bmc", m.BMC)
		if key := bmcKey(m.BMC); key != "" {
			if other, dup := bmcs[key]; dup {
				v.add(at+".bmc.endpoint", fmt.Sprintf("%s is the BMC of %s too (the same host and port, whatever the scheme)", m.BMC.Endpoint, other),
					"give each machine its own BMC; if one BMC manages several systems, name each machine's with bmc.system")
			}
			bmcs[key] = at
		}
	}
	c.validateDPUs(v)
}

// validateDPUs checks that each DPU names a host the inventory lists that
// is not itself a DPU, and that a DPU, part of its host's tray, is in no
// rack of its own.
func (c *Config) validateDPUs(v *fieldErrors) {
	byID := map[string]Machine{}
	for _, m := range c.Machines {
		byID[m.ID] = m
	}
	for i, m := range c.Machines {
		if m.DPUOf == "" {
			continue
		}
		at := fmt.Sprintf("machines[%d].dpu_of", i)
		host, ok := byID[m.DPUOf]
		switch {
		case m.DPUOf == m.ID:
			v.add(at, "names the machine itself", "give the id of the host the DPU sits in")
		case !ok:
			v.add(at, fmt.Sprintf("%q is not a machine of the inventory", m.DPUOf), "give the id of the host the DPU sits in, listed under machines")
		case host.DPUOf != "":
			v.add(at, fmt.Sprintf("%q is a DPU itself", m.DPUOf), "give the id of the host the DPU sits in")
		case host.Rack != nil && host.Rack.TrayType != "" && host.Rack.TrayType != "compute":
			v.add(at, fmt.Sprintf("%q is a %s tray", m.DPUOf, host.Rack.TrayType), "DPUs sit in compute trays")
		}
		if m.Rack != nil {
			v.add(fmt.Sprintf("machines[%d].rack", i), "is set on a DPU", "a DPU is part of its host's tray: remove its rack")
		}
	}
}

func (c *Config) validateRack(v *fieldErrors, at string, r *Rack) {
	if r == nil {
		return
	}
	if r.ID == "" {
		v.add(at+".id", "is required", "give the rack's id")
	}
	if r.Tray < 0 {
		v.add(at+".tray", fmt.Sprintf("%d is negative", r.Tray), "trays are numbered from 0")
	}
	if r.TrayType != "" {
		oneOf(v, at+".tray_type", r.TrayType, "compute", "switch", "powershelf")
	}
}

// bmcKey is what makes a machine's BMC one, as its id does: host, port
// as written (whatever the scheme) and system. "" when there is none.
func bmcKey(b *BMC) string {
	if b == nil {
		return ""
	}
	u, err := url.Parse(b.Endpoint)
	if err != nil || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Hostname()) + " " + u.Port() + " " + path.Base(b.System)
}

func (c *Config) validateBMC(v *fieldErrors, at string, b *BMC) {
	if b == nil {
		return
	}
	u, err := url.Parse(b.Endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.add(at+".endpoint", fmt.Sprintf("%q is not a BMC URL", b.Endpoint), "write it as https://10.88.1.10")
	}
	if b.Credentials == "" {
		v.add(at+".credentials", "is required", "name an entry of bmc_credentials")
	} else if _, ok := c.BMCCredentials[b.Credentials]; !ok {
		v.add(at+".credentials", fmt.Sprintf("%q is not defined", b.Credentials), "add it under bmc_credentials:")
	}
}

func (c *Config) validateBMCCredentials(v *fieldErrors) {
	for _, name := range sortedKeys(c.BMCCredentials) {
		cr, at := c.BMCCredentials[name], "bmc_credentials."+name
		if cr.Username == "" {
			v.add(at+".username", "is required", "")
		}
		if !path.IsAbs(cr.PasswordFile) {
			v.add(at+".password_file", fmt.Sprintf("%q is not an absolute path", cr.PasswordFile), "keep the password in a root-only file and name it here")
		}
	}
}

func (c *Config) validateBMCPolling(v *fieldErrors) {
	b := c.BMC
	atLeast := func(at string, d, least time.Duration) {
		if d < least {
			v.add(at, fmt.Sprintf("%s is too short", d), fmt.Sprintf("use at least %s", least))
		}
	}
	atLeast("bmc.poll_interval", b.PollInterval, time.Second)
	atLeast("bmc.request_timeout", b.RequestTimeout, 100*time.Millisecond)
	atLeast("bmc.max_backoff", b.MaxBackoff, b.PollInterval)
	atLeast("bmc.inventory_interval", b.InventoryInterval, b.PollInterval)
	if b.CAFile != "" && !path.IsAbs(b.CAFile) {
		v.add("bmc.ca_file", fmt.Sprintf("%q is not an absolute path", b.CAFile), "name the PEM bundle of the CAs that sign your BMCs' certificates")
	}
	if b.MaxPollsInFlight < 1 || b.MaxPollsInFlight > 1024 {
		v.add("bmc.max_polls_in_flight", fmt.Sprintf("%d is out of range", b.MaxPollsInFlight), "use 1 to 1024")
	}
	for i, name := range b.Discovery.Credentials {
		if _, ok := c.BMCCredentials[name]; !ok {
			v.add(fmt.Sprintf("bmc.discovery.credentials[%d]", i), fmt.Sprintf("%q is not defined", name), "add it under bmc_credentials:")
		}
	}
	for i, e := range b.Discovery.Endpoints {
		u, err := url.Parse(strings.ReplaceAll(e, "{ip}", "192.0.2.1"))
		if !strings.Contains(e, "{ip}") || err != nil || (u.Scheme != "https" && u.Scheme != "http") || (u.Path != "" && u.Path != "/") {
			v.add(fmt.Sprintf("bmc.discovery.endpoints[%d]", i), fmt.Sprintf("%q is not an endpoint template", e),
				`write it as "https://{ip}" or "http://{ip}:8000"`)
		}
	}
}

func (c *Config) validateUsers(v *fieldErrors) {
	names := map[string]string{}
	for i, u := range c.Users {
		at := fmt.Sprintf("users[%d]", i)
		validateAccount(v, at, u.Name, u.PasswordHash, names)
		oneOf(v, at+".role", u.Role, "viewer", "operator", "admin")
	}
}

// validateAccount checks a user's name (usable, unique among names, which
// it joins) and password hash.
func validateAccount(v *fieldErrors, at, name, hash string, names map[string]string) {
	if !slug.MatchString(name) {
		v.add(at+".name", fmt.Sprintf("%q is not a usable user name", name), "use letters, digits, '.', '_' and '-'")
	} else if other, dup := names[name]; dup {
		v.add(at+".name", fmt.Sprintf("%q is already used by %s", name, other), "user names must be unique")
	}
	names[name] = at
	if !isBcrypt(hash) {
		v.add(at+".password_hash", "is not a bcrypt hash", `create one with "slipway hash-password"`)
	}
}

var timeoutStates = []string{"hostinit", "validation", "hostreprovision", "waitingforcleanup"}

func (c *Config) validateLifecycle(v *fieldErrors) {
	for _, state := range sortedKeys(c.Lifecycle.Timeouts) {
		at := "lifecycle.timeouts." + state
		if !slices.Contains(timeoutStates, state) {
			v.add(at, "no timeout applies to this state", "use one of "+strings.Join(timeoutStates, ", "))
		} else if d := c.Lifecycle.Timeouts[state]; d != 0 && d < time.Minute {
			v.add(at, fmt.Sprintf("%s is too short for a machine to make progress", d), "use at least 1m, or 0 to wait forever")
		}
	}
	if d := c.Lifecycle.HeartbeatRetention; d != 0 && d < time.Hour {
		v.add("lifecycle.heartbeat_retention", fmt.Sprintf("%s is too short to read an install's history", d), "use at least 1h, or 0 to keep heartbeats for ever")
	}
	if n := c.Lifecycle.HeartbeatsPerMachine; n < 10 || n > 100_000 {
		v.add("lifecycle.heartbeats_per_machine", fmt.Sprintf("%d is out of range", n), "use 10 to 100000 (a MAC's newest heartbeats kept)")
	}
}

func (c *Config) validateMQTTUsers(v *fieldErrors) {
	names := map[string]string{}
	for i, u := range c.MQTT.Users {
		at := fmt.Sprintf("mqtt.users[%d]", i)
		validateAccount(v, at, u.Name, u.PasswordHash, names)
		for j, rule := range u.ACL {
			c.validateMQTTRule(v, fmt.Sprintf("%s.acl[%d]", at, j), rule)
		}
	}
}

func (c *Config) validateMQTTRule(v *fieldErrors, at string, r MQTTACL) {
	if !validTopicFilter(r.Topic) {
		v.add(at+".topic", fmt.Sprintf("%q is not an MQTT topic filter", r.Topic), "use levels separated by '/', '+' for one level, '#' last for the rest")
	}
	oneOf(v, at+".access", r.Access, "read", "write", "readwrite")
	if r.Access != "read" && OverlapsReservedTopics(r.Topic) {
		v.add(at+".access", fmt.Sprintf("%q can reach NICO/ or slipway/, which only Slipway publishes", r.Topic), "grant read there, and write on a topic of your own such as site/#")
	}
}

func validTopicFilter(f string) bool {
	if f == "" || strings.ContainsRune(f, 0) {
		return false
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.ContainsAny(l, "+#") && l != "+" && (l != "#" || i != len(levels)-1) {
			return false
		}
	}
	return true
}

func ipv4(v *fieldErrors, at, s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		v.add(at, fmt.Sprintf("%q is not an IPv4 address", s), "write it like 10.88.0.1")
		return netip.Addr{}
	}
	return a
}

func parseMAC(v *fieldErrors, at, s string) (domain.MAC, bool) {
	mac, err := domain.ParseMAC(s)
	if err != nil {
		v.add(at, err.Error(), "")
		return "", false
	}
	return mac, true
}

func oneOf(v *fieldErrors, at, got string, allowed ...string) {
	if !slices.Contains(allowed, got) {
		v.add(at, fmt.Sprintf("%q is not allowed", got), "use one of: "+strings.Join(allowed, ", "))
	}
}

func positive(v *fieldErrors, at string, d time.Duration) {
	if d <= 0 {
		v.add(at, fmt.Sprintf("%s is not a positive duration", d), "use a duration such as 5s")
	}
}

func port(v *fieldErrors, at string, p int, zeroDisables bool) {
	if p == 0 && zeroDisables {
		return
	}
	if p < 1 || p > 65535 {
		v.add(at, fmt.Sprintf("%d is not a port number", p), "use 1-65535")
	}
}

func relativePath(v *fieldErrors, at, p string) {
	clean := path.Clean(p)
	if p == "" || path.IsAbs(p) || clean == ".." || strings.HasPrefix(clean, "../") {
		v.add(at, fmt.Sprintf("%q is not a path inside the TFTP root", p), "give a relative path such as ipxe.efi")
	}
}

// dnsName is a host name a certificate may carry.
var dnsName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$`)

var bcryptHash = regexp.MustCompile(`^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$`)

func isBcrypt(s string) bool { return bcryptHash.MatchString(s) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// validateMQTTLimits keeps the broker's limits where they still bound it.
func (c *Config) validateMQTTLimits(v *fieldErrors) {
	m := c.MQTT
	for _, l := range []struct {
		at        string
		n, lo, hi int
		fix       string
	}{
		{"mqtt.max_packet_kib", m.MaxPacketKiB, 1, 256 * 1024, "use 1 to 262144 (KiB); 1024 is plenty for Slipway's messages"},
		{"mqtt.max_connections", m.MaxConnections, 1, 1 << 20, "use 1 to 1048576"},
		{"mqtt.max_queued_per_client", m.MaxQueuedPerClient, 1, 1 << 20, "use 1 to 1048576 (messages)"},
	} {
		if l.n < l.lo || l.n > l.hi {
			v.add(l.at, fmt.Sprintf("%d is out of range", l.n), l.fix)
		}
	}
	for i, o := range m.WebSocketOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			v.add(fmt.Sprintf("mqtt.websocket_origins[%d]", i), fmt.Sprintf("%q is not a web origin", o), "write it as scheme and host, e.g. https://dashboard.example:8443")
		}
	}
	if m.ConnectTimeout < time.Second || m.ConnectTimeout > 10*time.Minute {
		v.add("mqtt.connect_timeout", fmt.Sprintf("%s is out of range", m.ConnectTimeout), "use 1s to 10m; 10s is a good default")
	}
}

func (c *Config) validateClientLimits(v *fieldErrors) {
	for _, l := range []struct {
		field string
		n     int
		what  string
	}{{"dhcp.requests_per_client", c.DHCP.RequestsPerClient, "DHCP requests a second per MAC"},
		{"tftp.requests_per_address", c.TFTP.RequestsPerAddress, "TFTP requests a second per address"},
		{"tftp.transfers_per_address", c.TFTP.TransfersPerAddress, "TFTP transfers at once per address"},
		{"tftp.max_transfers", c.TFTP.MaxTransfers, "TFTP transfers at once in all"}} {
		if l.n < 0 || l.n > 100_000 {
			v.add(l.field, fmt.Sprintf("%d is out of range", l.n), "use 1 to 100000 "+l.what+", or 0 for no limit")
		}
	}
}

func (c *Config) validateHTTPS(v *fieldErrors) {
	if (c.HTTPS.CertFile == "") != (c.HTTPS.KeyFile == "") {
		v.add("https.cert_file", "a certificate needs its key, and a key its certificate", "give both https.cert_file and https.key_file, or neither for a self-made certificate")
	}
	for _, f := range []struct{ field, path string }{{"https.cert_file", c.HTTPS.CertFile}, {"https.key_file", c.HTTPS.KeyFile}} {
		if f.path != "" && !filepath.IsAbs(f.path) {
			v.add(f.field, fmt.Sprintf("%q is not an absolute path", f.path), "give the file's absolute path")
		}
	}
	for i, h := range c.HTTPS.Hosts {
		if !dnsName.MatchString(h) {
			v.add(fmt.Sprintf("https.hosts[%d]", i), fmt.Sprintf("%q is not a host name", h), "use a DNS name such as slipway.lab.example")
		}
	}
}

func (c *Config) validateDiscovery(v *fieldErrors) {
	doors := make([]string, len(domain.Doors))
	for i, d := range domain.Doors {
		doors[i] = string(d)
	}
	if len(c.Discovery.Doors) == 0 {
		v.add("discovery.doors", "no door may discover a machine", "list at least dhcp; to record no unknown machine at all, set netboot.unknown_machines: ignore")
	}
	seen := map[string]bool{}
	for i, d := range c.Discovery.Doors {
		at := fmt.Sprintf("discovery.doors[%d]", i)
		oneOf(v, at, d, doors...)
		if seen[d] {
			v.add(at, fmt.Sprintf("%q is listed twice", d), "list each door once")
		}
		seen[d] = true
	}
	if n := c.Discovery.MaxMachines; n < 0 {
		v.add("discovery.max_machines", fmt.Sprintf("%d is negative", n), "use the most discovered machines you expect, or 0 for no bound")
	}
	if d := c.Discovery.ExpireAfter; d != 0 && d < time.Hour {
		v.add("discovery.expire_after", fmt.Sprintf("%s is too short: a machine may take that long to netboot", d), "use at least 1h, or 0 to keep discovered machines")
	}
}
