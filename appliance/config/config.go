package config

import (
	"net/netip"
	"time"

	"github.com/slipway/slipway/appliance/domain"
)

// Config is the whole configuration of one appliance.
type Config struct {
	LAN     LAN    `yaml:"lan"`
	DataDir string `yaml:"data_dir"`
	// MemoryLimit bounds the memory Slipway's runtime holds: "auto", "off"
	// or a size such as 768MiB (read by Memory).
	MemoryLimit string  `yaml:"memory_limit"`
	Log         Log     `yaml:"log"`
	HTTP        HTTP    `yaml:"http"`
	HTTPS       HTTPS   `yaml:"https"`
	TFTP        TFTP    `yaml:"tftp"`
	MQTT        MQTT    `yaml:"mqtt"`
	DHCP        DHCP    `yaml:"dhcp"`
	Store       Store   `yaml:"store"`
	Netboot     Netboot `yaml:"netboot"`
	// Discovery bounds how machines come to exist from the LAN alone.
	Discovery Discovery `yaml:"discovery"`
	// Lifecycle tunes the machine state machine.
	Lifecycle Lifecycle `yaml:"lifecycle"`

	// Profiles says what to install, by profile name.
	Profiles       map[string]Profile `yaml:"profiles"`
	DefaultProfile string             `yaml:"default_profile"`

	Machines       []Machine                 `yaml:"machines"`
	BMCCredentials map[string]BMCCredentials `yaml:"bmc_credentials"`
	// BMC paces the Redfish poller and says how BMCs are discovered.
	BMC   BMCPolling `yaml:"bmc"`
	Users []User     `yaml:"users"`
	// NICo is what NICo's REST dialect needs of this box.
	NICo NICo `yaml:"nico"`
	// USM is StarlingX USM's dialect: OS releases and their deploy.
	USM USM `yaml:"usm"`
	// Bridge sends this box's events to an upstream MQTT broker.
	Bridge Bridge `yaml:"bridge"`
	// Image is read by the USB/ISO appliance image's start-up only.
	Image Image `yaml:"image"`

	// Filled by Validate from the fields above, so that no caller parses twice.
	lanPrefix netip.Prefix
	memory    MemoryLimit
	// lines are where each field stands in the file, for later checks.
	lines fieldLines
}

// LAN is the one provisioning network the appliance serves.
type LAN struct {
	// Interface is the NIC by name ("eth1"), by MAC address, or "auto":
	// the host's only wired NIC (the appliance image's default).
	Interface string `yaml:"interface"`
	// Address is the appliance's own IP on the LAN with its prefix length,
	// e.g. 10.88.0.1/24. Every listener binds to this IP.
	Address string `yaml:"address"`
	// Configure makes Slipway bring the interface up and assign Address
	// itself at start, for hosts that nothing else configures (the
	// appliance image); false: the host's own network setup must.
	Configure bool `yaml:"configure"`
}

// Log selects how the appliance logs.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// HTTP is the port for netboot files, the APIs, the console and metrics.
type HTTP struct {
	Port int `yaml:"port"`
	// ShutdownGrace is how long in-flight requests get to finish on stop.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// SessionTTL is how long a console or API login lasts.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// MaxConnections bounds connections open at once, and
	// MaxConnectionsPerAddress those from one client address.
	MaxConnections           int `yaml:"max_connections"`
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`
}

// HTTPS serves the console and the APIs over TLS, on the same LAN address
// as plain HTTP, which keeps what firmware fetches.
type HTTPS struct {
	Port int `yaml:"port"` // 0: no TLS
	// CertFile and KeyFile are the operator's own certificate chain and
	// key (PEM); without them Slipway makes a self-signed certificate at
	// first start, kept in <data_dir>/tls.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Hosts are the names a self-made certificate carries besides the LAN
	// address (the box's DNS name, if it has one).
	Hosts []string `yaml:"hosts"`
	// PlainAPI lets the APIs (native, Drydock, NICo) answer on plain HTTP
	// too, for clients that cannot be given the certificate; the console
	// is served over TLS only.
	PlainAPI bool `yaml:"plain_api"`
}

// TLSDir holds the self-made certificate.
func (c *Config) TLSDir() string { return c.DataDir + "/tls" }

// TFTP serves first-stage boot loaders read-only.
type TFTP struct {
	Port int    `yaml:"port"`
	Root string `yaml:"root"` // empty: <data_dir>/tftp
	// RequestsPerAddress is how many requests a second one client address
	// is answered (twice that at once), TransfersPerAddress how many files
	// it may fetch at once; 0: no limit.
	RequestsPerAddress  int `yaml:"requests_per_address"`
	TransfersPerAddress int `yaml:"transfers_per_address"`
	// MaxTransfers is how many files are sent at once to all clients
	// together; a request past it waits for its turn; 0: no limit.
	MaxTransfers int `yaml:"max_transfers"`
}

// MQTT is the embedded broker.
type MQTT struct {
	Port          int `yaml:"port"`
	WebSocketPort int `yaml:"websocket_port"` // 0 disables MQTT over WebSocket
	// WebSocketOrigins are the web origins whose pages may use MQTT over
	// WebSocket, beside the box's own address (and programs, which send none).
	WebSocketOrigins []string `yaml:"websocket_origins"`
	// Anonymous lets clients without a username subscribe to every topic.
	// Nobody but Slipway publishes under NICO/ and slipway/, whatever the rules.
	Anonymous bool       `yaml:"anonymous"`
	Users     []MQTTUser `yaml:"users"`
	// Limits a LAN client cannot exceed, logged in or not.
	MaxPacketKiB       int           `yaml:"max_packet_kib"`        // the largest packet read, CONNECT included
	MaxConnections     int           `yaml:"max_connections"`       // open at once, logged in or not
	ConnectTimeout     time.Duration `yaml:"connect_timeout"`       // to send CONNECT once connected
	MaxQueuedPerClient int           `yaml:"max_queued_per_client"` // messages waiting for a slow subscriber
}

// MQTTUser is a named MQTT client with topic rules.
type MQTTUser struct {
	Name         string    `yaml:"name"`
	PasswordHash string    `yaml:"password_hash"` // bcrypt
	ACL          []MQTTACL `yaml:"acl"`
}

// MQTTACL grants access to a topic filter.
type MQTTACL struct {
	Topic  string `yaml:"topic"`  // an MQTT topic filter: site/#, NICO/v1/machine/+/state
	Access string `yaml:"access"` // read | write | readwrite
}

// Discovery says which node-facing doors may make a machine of a MAC
// nobody owns, how many such machines may exist, and when the ones that
// never progressed are forgotten.
type Discovery struct {
	Doors       []string      `yaml:"doors"`        // dhcp | boot | cloud-init | heartbeat
	MaxMachines int           `yaml:"max_machines"` // 0: no bound
	ExpireAfter time.Duration `yaml:"expire_after"` // 0: kept
}

// Policy is the discovery policy the inventory applies.
func (d Discovery) Policy() domain.DiscoveryPolicy {
	doors := make([]domain.Door, len(d.Doors))
	for i, s := range d.Doors {
		doors[i] = domain.Door(s)
	}
	return domain.DiscoveryPolicy{Doors: doors, MaxMachines: d.MaxMachines, ExpireAfter: d.ExpireAfter}
}

// Lifecycle tunes the machine lifecycle.
type Lifecycle struct {
	// Timeouts are how long a machine may stay in a state before it is
	// failed, by top-level state: hostinit, validation, hostreprovision,
	// waitingforcleanup. 0 waits forever.
	Timeouts map[string]time.Duration `yaml:"timeouts"`
	// HeartbeatRetention is how long onboarding heartbeats are kept (0:
	// for ever); HeartbeatsPerMachine how many of a MAC's newest are kept.
	HeartbeatRetention   time.Duration `yaml:"heartbeat_retention"`
	HeartbeatsPerMachine int           `yaml:"heartbeats_per_machine"`
}

// DHCP configures the DHCPv4 server on the LAN interface.
type DHCP struct {
	Mode      string        `yaml:"mode"` // full | proxy | off
	Port      int           `yaml:"port"`
	Range     Range         `yaml:"range"`
	LeaseTime time.Duration `yaml:"lease_time"`
	// CacheThreshold is the share of a lease's time (0–1) within which a
	// bound lease asked for again is answered without a write.
	CacheThreshold float64       `yaml:"cache_threshold"`
	Router         string        `yaml:"router"`
	DNS            []string      `yaml:"dns"`
	Domain         string        `yaml:"domain"`
	NTP            []string      `yaml:"ntp"`
	Reservations   []Reservation `yaml:"reservations"`
	IgnoreUnknown  bool          `yaml:"ignore_unknown"`
	// Subnets are networks behind DHCP relays (a rack's own subnet whose
	// switch forwards DHCP here), each with its own pool.
	Subnets []Subnet `yaml:"subnets"`
	// RequestsPerClient is how many requests a second one MAC is answered
	// (twice that at once); 0: no limit.
	RequestsPerClient int `yaml:"requests_per_client"`
}

// Subnet is a relayed network's address plan. What it leaves out, it takes
// from dhcp: lease_time, dns, ntp and domain.
type Subnet struct {
	Subnet       string        `yaml:"subnet"` // CIDR, e.g. 10.89.0.0/24
	Range        Range         `yaml:"range"`
	Router       string        `yaml:"router"` // the relay's address on that network: its clients reach this box through it
	LeaseTime    time.Duration `yaml:"lease_time"`
	DNS          []string      `yaml:"dns"`
	Domain       string        `yaml:"domain"`
	NTP          []string      `yaml:"ntp"`
	Reservations []Reservation `yaml:"reservations"`
}

// Range is an inclusive address pool.
type Range struct {
	Start string `yaml:"start"`
	End   string `yaml:"end"`
}

// Reservation pins a MAC to an address and, optionally, a hostname.
type Reservation struct {
	MAC      string `yaml:"mac"`
	IP       string `yaml:"ip"`
	Hostname string `yaml:"hostname"`
}

// Store tunes the SQLite database in the data directory.
type Store struct {
	BusyTimeout time.Duration `yaml:"busy_timeout"`
	// Sync is when a commit reaches the disk: "full" (before it is
	// acknowledged) or "normal" (at checkpoints; survives a crash of the
	// process, not a power cut).
	Sync string `yaml:"sync"`
}

// Netboot maps client architectures to first-stage boot files.
type Netboot struct {
	// BootFiles maps a DHCP client-architecture name (bios, uefi-x64,
	// uefi-arm64) to a path under the TFTP root.
	BootFiles map[string]string `yaml:"boot_files"`
	// RouterAdvertisements answers IPv6 router solicitations with "no router
	// here", so iPXE does not wait ~13 s per boot for one (see netboot/ra).
	RouterAdvertisements bool `yaml:"router_advertisements"`
	// UnknownMachines is what a MAC no machine owns gets when it netboots:
	// "install" (it becomes a discovered machine and installs), "local" (it
	// becomes a discovered machine told to boot its local disk, until an
	// operator provisions it) or "ignore" (no answer, nothing recorded).
	UnknownMachines string `yaml:"unknown_machines"`
	// CallerCheck is who may speak for a MAC at the node-facing doors
	// (heartbeats, cloud-init, boot configs): "address" (the machine's
	// own address, or its node token) or "off" (anyone).
	CallerCheck string `yaml:"caller_check"`
}

// UnknownMachinePolicy is netboot.unknown_machines, with dhcp.ignore_unknown
// (its older spelling) taken as "ignore".
func (c *Config) UnknownMachinePolicy() string {
	if c.DHCP.IgnoreUnknown {
		return "ignore"
	}
	return c.Netboot.UnknownMachines
}

// Profile is one thing a machine can be booted into.
type Profile struct {
	Kernel    string `yaml:"kernel"`
	Initrd    string `yaml:"initrd"`
	Cmdline   string `yaml:"cmdline"`
	CloudInit string `yaml:"cloud_init"` // template file under <data_dir>/templates
}

// Machine is one entry of the inventory the operator knows in advance.
// Machines not listed here are discovered when they first boot.
type Machine struct {
	ID       string   `yaml:"id"`
	MACs     []string `yaml:"macs"`
	Hostname string   `yaml:"hostname"`
	Profile  string   `yaml:"profile"`
	Rack     *Rack    `yaml:"rack"`
	BMC      *BMC     `yaml:"bmc"`
	// DPUOf makes the machine a DPU of the host it names: NICo's target
	// dpu reinstalls it through its own BMC.
	DPUOf string `yaml:"dpu_of,omitempty"`
}

// NICo configures NICo's REST dialect (tray firmware updates).
type NICo struct {
	// SiteID is this box's site id (a UUID): NICo's requests name it, and
	// one naming another site is refused. Empty: none is accepted.
	SiteID string `yaml:"site_id"`
	// ParallelUpdates bounds how many trays of one batch update at once.
	ParallelUpdates int `yaml:"parallel_updates"`
	// DPU is what DPU reprovisioning installs: NICo's request names no
	// version for it.
	DPU DPU `yaml:"dpu"`
}

// USM configures StarlingX USM's API (OS releases) on a port of its own.
type USM struct {
	// Port is the API's TCP port (5497, StarlingX's HAProxy port); 0: off.
	Port int `yaml:"port"`
	// TrustedKeys are OpenPGP public key files (gpg --export --armor): a
	// release must carry a detached signature by one of them.
	TrustedKeys []string `yaml:"trusted_keys"`
	// MaxUploadMiB bounds one uploaded file.
	MaxUploadMiB int64 `yaml:"max_upload_mib"`
	// TLS has usm.port speak TLS, with the console's certificate, as a
	// StarlingX controller's API port does in HTTPS mode.
	TLS bool `yaml:"tls"`
}

// DPU is the site's DPU configuration.
type DPU struct {
	// OSVersion is the version of the DPU_OS image (the BFB) in the
	// firmware library that every reprovisioned DPU gets.
	OSVersion string `yaml:"os_version"`
	// BufferTime is how long the host stays off after its DPUs were
	// reinstalled, before it is powered on again.
	BufferTime time.Duration `yaml:"buffer_time"`
}

// Rack places a machine in a rack tray.
type Rack struct {
	ID       string `yaml:"id"`
	Name     string `yaml:"name"`
	Tray     int    `yaml:"tray"`
	TrayType string `yaml:"tray_type"` // compute | switch | powershelf
}

// BMC says how to reach a machine's baseboard management controller.
type BMC struct {
	Endpoint string `yaml:"endpoint"` // https://10.88.1.10
	// Credentials names an entry of bmc_credentials; secrets never sit in
	// the inventory itself.
	Credentials        string `yaml:"credentials"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	// System names the machine's computer system (its Id or URI) on a BMC
	// that manages several (a blade chassis, a multi-node tray).
	System string `yaml:"system"`
}

// BMCPolling tunes how BMCs are polled and discovered.
type BMCPolling struct {
	PollInterval     time.Duration `yaml:"poll_interval"`
	RequestTimeout   time.Duration `yaml:"request_timeout"`
	MaxPollsInFlight int           `yaml:"max_polls_in_flight"`
	MaxBackoff       time.Duration `yaml:"max_backoff"`
	// InventoryInterval is how often the rarely changing parts of a BMC's
	// inventory (host NICs, firmware) are read again; power and health are
	// read at every poll.
	InventoryInterval time.Duration `yaml:"inventory_interval"`
	// CAFile is a PEM bundle of CAs that sign the site's BMC certificates,
	// trusted besides the system's.
	CAFile    string       `yaml:"ca_file"`
	Discovery BMCDiscovery `yaml:"discovery"`
}

// BMCDiscovery registers BMCs that take a DHCP lease and answer Redfish.
type BMCDiscovery struct {
	// Credentials name entries of bmc_credentials, tried in order on each
	// BMC found; none turns discovery off.
	Credentials []string `yaml:"credentials"`
	// Endpoints are URL templates tried in order; {ip} is the leased address.
	Endpoints          []string `yaml:"endpoints"`
	InsecureSkipVerify bool     `yaml:"insecure_skip_verify"`
}

// BMCCredentials is a named user and the file that holds its password.
type BMCCredentials struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// User is a console/API operator.
type User struct {
	Name         string `yaml:"name"`
	Role         string `yaml:"role"`          // viewer | operator | admin
	PasswordHash string `yaml:"password_hash"` // bcrypt ($2a$, $2b$ or $2y$)
}

// LANPrefix is lan.address parsed; valid only after Validate succeeded.
func (c *Config) LANPrefix() netip.Prefix { return c.lanPrefix }

// LANIP is the appliance's own address on the LAN.
func (c *Config) LANIP() netip.Addr { return c.lanPrefix.Addr() }

// TFTPRoot is tftp.root, or <data_dir>/tftp when that is empty.
func (c *Config) TFTPRoot() string {
	if c.TFTP.Root != "" {
		return c.TFTP.Root
	}
	return c.DataDir + "/tftp"
}

// FirmwareDir holds the firmware images BMCs fetch.
func (c *Config) FirmwareDir() string { return c.DataDir + "/firmware" }

// SessionKeyFile is the key login sessions are signed with.
func (c *Config) SessionKeyFile() string { return c.DataDir + "/session.key" }

// NodeKeyFile is the key node tokens are made with: replacing it gives
// every machine a new token.
func (c *Config) NodeKeyFile() string { return c.DataDir + "/node.key" }

// SecretKeyFile is the key BMC passwords are sealed with in the database.
func (c *Config) SecretKeyFile() string { return c.DataDir + "/secret.key" }

// ReleasesDir holds the OS releases, under the assets the hosts fetch.
func (c *Config) ReleasesDir() string { return c.AssetsDir() + "/releases" }

// ReleaseStagingDir holds release uploads being checked: not served, on the
// same file system as ReleasesDir.
func (c *Config) ReleaseStagingDir() string { return c.DataDir + "/.incoming-releases" }

// AssetsDir holds kernels, initrds and images served under /assets/.
func (c *Config) AssetsDir() string { return c.DataDir + "/assets" }

// TemplatesDir holds the profiles' cloud-init user-data templates.
func (c *Config) TemplatesDir() string { return c.DataDir + "/templates" }

// CloudInitTemplate is profile name's user-data template, relative to
// TemplatesDir: profiles.<name>.cloud_init, or <name>.yaml.
func (c *Config) CloudInitTemplate(name string) string {
	if t := c.Profiles[name].CloudInit; t != "" {
		return t
	}
	return name + ".yaml"
}

// DBPath is where the SQLite database lives.
func (c *Config) DBPath() string { return c.DataDir + "/slipway.db" }

// MachineMACs returns machine m's MACs in canonical form; valid after Validate.
func (m Machine) MachineMACs() []domain.MAC {
	out := make([]domain.MAC, 0, len(m.MACs))
	for _, s := range m.MACs {
		if mac, err := domain.ParseMAC(s); err == nil {
			out = append(out, mac)
		}
	}
	return out
}

// Listed is machine m as the model takes it; valid after Validate.
func (m Machine) Listed() domain.Listed {
	l := domain.Listed{ID: m.ID, MACs: m.MachineMACs(), MachineInfo: domain.MachineInfo{Hostname: m.Hostname, Profile: m.Profile, DPUOf: m.DPUOf}}
	if m.Rack != nil {
		l.RackID, l.RackName, l.Tray, l.TrayType = m.Rack.ID, m.Rack.Name, m.Rack.Tray, m.Rack.TrayType
		l.TrayKnown = true
	}
	if m.BMC != nil {
		l.BMCEndpoint = m.BMC.Endpoint
	}
	return l
}

// ListedMachines are the configuration's machines as the model takes them.
func (c *Config) ListedMachines() []domain.Listed {
	out := make([]domain.Listed, len(c.Machines))
	for i, m := range c.Machines {
		out[i] = m.Listed()
	}
	return out
}

// Image is what the appliance image's start-up reads of the
// configuration, before Slipway itself starts; Slipway ignores it.
type Image struct {
	// StateDevice holds data_dir: empty for the boot stick's own state
	// partition (made at first boot), or a disk or partition of this box
	// as /dev/..., LABEL=... or UUID=...; "memory" keeps the state in RAM.
	StateDevice string `yaml:"state_device"`
}
