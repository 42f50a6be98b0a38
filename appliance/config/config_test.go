package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimal = `
lan:
  interface: eth1
  address: 10.88.0.1/24
dhcp:
  range: {start: 10.88.0.100, end: 10.88.0.199}
`

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "slipway.example.yaml"))
	if err != nil {
		t.Fatalf("the shipped example must load cleanly:\n%v", err)
	}
	if got := cfg.LANIP().String(); got != "10.88.0.1" {
		t.Errorf("LANIP() = %s", got)
	}
	if len(cfg.Machines) != 1 || cfg.Machines[0].MachineMACs()[0] != "52:54:00:00:00:10" {
		t.Errorf("machines = %+v", cfg.Machines)
	}
}

func TestDefaultsApplyUnderAMinimalFile(t *testing.T) {
	cfg, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Port != 80 || cfg.MQTT.Port != 1883 || cfg.DHCP.Mode != "full" || cfg.DataDir != "/var/lib/slipway" {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if cfg.TFTPRoot() != "/var/lib/slipway/tftp" {
		t.Errorf("TFTPRoot() = %q", cfg.TFTPRoot())
	}
	if cfg.Netboot.BootFiles["bios"] != "undionly.kpxe" {
		t.Errorf("boot files default lost: %v", cfg.Netboot.BootFiles)
	}
}

func TestOverridingOneBootFileKeepsTheOthers(t *testing.T) {
	cfg, err := Parse([]byte(minimal + "netboot:\n  boot_files:\n    bios: custom.kpxe\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Netboot.BootFiles["bios"] != "custom.kpxe" || cfg.Netboot.BootFiles["uefi-x64"] != "ipxe.efi" {
		t.Errorf("boot_files = %v", cfg.Netboot.BootFiles)
	}
}

// Each case names the error text that must appear: the field's path first,
// as an operator would search for it in the file.
func TestInvalidConfigsNameTheField(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"typo in a top-level key", minimal + "dat_dir: /x\n", []string{`dat_dir (line 7): unknown field; did you mean "data_dir"?`}},
		{"typo in a nested key", strings.Replace(minimal, "address:", "adress:", 1), []string{`lan.adress (line 4): unknown field; did you mean "address"?`}},
		{"unknown key far from any", minimal + "http:\n  zzzzzzzz: 1\n", []string{"http.zzzzzzzz (line 8): unknown field; known fields here: max_connections, max_connections_per_address, port, session_ttl, shutdown_grace"}},
		{"bad CIDR", strings.Replace(minimal, "10.88.0.1/24", "10.88.0.1/33", 1), []string{`lan.address (line 4): "10.88.0.1/33" is not a CIDR address`}},
		{"missing prefix length", strings.Replace(minimal, "10.88.0.1/24", "10.88.0.1", 1), []string{"lan.address (line 4)", "add the prefix length, e.g. 10.88.0.1/24"}},
		{"network address", strings.Replace(minimal, "10.88.0.1/24", "10.88.0.0/24", 1), []string{"network or broadcast address"}},
		{"IPv6 LAN", strings.Replace(minimal, "10.88.0.1/24", "fd00::1/64", 1), []string{"lan.address", "is not IPv4"}},
		{"missing interface", strings.Replace(minimal, "interface: eth1", "interface: ''", 1), []string{"lan.interface (line 3): is required"}},
		{"interface by a broken MAC", strings.Replace(minimal, "interface: eth1", "interface: '52:54:00:12:34:zz'", 1), []string{`lan.interface (line 3): "52:54:00:12:34:zz" is not a MAC address`}},
		{"state device not a device", minimal + "image:\n  state_device: sdb\n", []string{`image.state_device (line 8): "sdb" names no device`}},
		{"wrong type for a port", minimal + "http:\n  port: eighty\n", []string{`http.port (line 8): "eighty" is a string, expected a whole number`}},
		{"bad duration", minimal + "  lease_time: 1 hour\n", []string{"dhcp.lease_time (line 7)", "expected a duration"}},
		{"cache threshold a whole lease", minimal + "  cache_threshold: 1\n", []string{"dhcp.cache_threshold (line 7): 1 is out of range", "use 0 (write every renewal) up to 0.99"}},
		{"memory limit without a unit", minimal + "memory_limit: 512\n", []string{`memory_limit (line 7): "512" is neither auto, off nor a size such as 768MiB`}},
		{"memory limit too small", minimal + "memory_limit: 16MiB\n", []string{"memory_limit (line 7): 16MiB is less than 64MiB"}},
		{"cache threshold negative", minimal + "  cache_threshold: -0.5\n", []string{"dhcp.cache_threshold (line 7): -0.5 is out of range"}},
		{"range outside the LAN", strings.Replace(minimal, "10.88.0.199", "10.89.0.199", 1), []string{"dhcp.range.end (line 6): 10.89.0.199 is outside the LAN 10.88.0.0/24"}},
		{"range reversed", strings.Replace(minimal, "start: 10.88.0.100, end: 10.88.0.199", "start: 10.88.0.199, end: 10.88.0.100", 1), []string{"dhcp.range.end", "comes before"}},
		{"range holds own IP", strings.Replace(minimal, "10.88.0.100", "10.88.0.1", 1), []string{"contains the appliance's own address"}},
		{"unknown dhcp mode", minimal + "  mode: relay\n", []string{`dhcp.mode (line 7): "relay" is not allowed; use one of: full, proxy, off`}},
		{"same TCP port twice", minimal + "mqtt:\n  port: 80\n", []string{"mqtt.port (line 8): port 80 is already used by http.port"}},
		{"port out of range", minimal + "http:\n  port: 70000\n", []string{"http.port (line 8): 70000 is not a port number"}},
		{"bad reservation MAC", minimal + "  reservations:\n    - {mac: nope, ip: 10.88.0.5}\n", []string{`dhcp.reservations[0].mac (line 8): "nope" is not a MAC address`}},
		{"duplicate machine MAC", minimal + "machines:\n  - {id: a, macs: ['52:54:00:00:00:01']}\n  - {id: b, macs: ['52-54-00-00-00-01']}\n", []string{"machines[1].macs[0] (line 9): 52:54:00:00:00:01 already belongs to machines[0]"}},
		{"machine without MAC", minimal + "machines:\n  - {id: a}\n", []string{"machines[0].macs", "is empty"}},
		{"undefined profile", minimal + "machines:\n  - {id: a, macs: ['52:54:00:00:00:01'], profile: nope}\n", []string{`machines[0].profile (line 8): profile "nope" is not defined`}},
		{"default profile and no profiles", minimal + "default_profile: debian\n", []string{`default_profile (line 7): profile "debian" is not defined; define it under profiles:, with its kernel, initrd and cmdline`}},
		{"undefined credentials", minimal + "machines:\n  - id: a\n    macs: ['52:54:00:00:00:01']\n    bmc: {endpoint: 'https://10.88.1.2', credentials: x}\n", []string{`machines[0].bmc.credentials (line 10): "x" is not defined`}},
		{"undefined discovery credentials", minimal + "bmc:\n  discovery: {credentials: [factory]}\n", []string{`bmc.discovery.credentials[0] (line 8): "factory" is not defined`}},
		{"two machines on one BMC", minimal + "machines:\n  - id: a\n    macs: ['52:54:00:00:00:01']\n    bmc: {endpoint: 'http://10.88.1.2:8000', credentials: x}\n  - id: b\n    macs: ['52:54:00:00:00:02']\n    bmc: {endpoint: 'https://10.88.1.2:8000', credentials: x}\n",
			[]string{"machines[1].bmc.endpoint (line 13): https://10.88.1.2:8000 is the BMC of machines[0] too", "bmc.system"}},
		{"discovery endpoint without {ip}", minimal + "bmc:\n  discovery: {endpoints: ['https://10.0.0.1']}\n", []string{"bmc.discovery.endpoints[0] (line 8)", "{ip}"}},
		{"BMC poll interval too short", minimal + "bmc:\n  poll_interval: 10ms\n", []string{"bmc.poll_interval (line 8): 10ms is too short"}},
		{"backoff shorter than the interval", minimal + "bmc:\n  poll_interval: 5m\n  max_backoff: 1m\n", []string{"bmc.max_backoff (line 9)", "use at least 5m0s"}},
		{"relative CA file", minimal + "bmc:\n  ca_file: certs/ca.pem\n", []string{`bmc.ca_file (line 8): "certs/ca.pem" is not an absolute path`}},
		{"no BMC polls at all", minimal + "bmc:\n  max_polls_in_flight: 0\n", []string{"bmc.max_polls_in_flight (line 8)"}},
		{"DPU of itself", minimal + "machines:\n  - id: a\n    macs: ['52:54:00:00:00:01']\n    dpu_of: a\n", []string{`machines[0].dpu_of`, "names the machine itself"}},
		{"DPU of nobody", minimal + "machines:\n  - id: a\n    macs: ['52:54:00:00:00:01']\n    dpu_of: h\n", []string{`machines[0].dpu_of`, `"h" is not a machine`}},
		{"DPU of a DPU", minimal + "machines:\n  - id: h\n    macs: ['52:54:00:00:00:01']\n    dpu_of: a\n  - id: a\n    macs: ['52:54:00:00:00:02']\n    dpu_of: h\n", []string{`machines[1].dpu_of`, `"h" is a DPU itself`}},
		{"DPU of a switch", minimal + "machines:\n  - id: h\n    macs: ['52:54:00:00:00:01']\n    rack: {id: r1, tray_type: switch}\n  - id: a\n    macs: ['52:54:00:00:00:02']\n    dpu_of: h\n", []string{`machines[1].dpu_of`, "switch tray", "DPUs sit in compute trays"}},
		{"DPU in a rack", minimal + "machines:\n  - id: h\n    macs: ['52:54:00:00:00:01']\n  - id: a\n    macs: ['52:54:00:00:00:02']\n    dpu_of: h\n    rack: {id: r1}\n", []string{`machines[1].rack`, "is set on a DPU"}},
		{"DPU buffer time", minimal + "nico: {dpu: {buffer_time: 2h}}\n", []string{`nico.dpu.buffer_time`, "out of range"}},
		{"bad tray type", minimal + "machines:\n  - id: a\n    macs: ['52:54:00:00:00:01']\n    rack: {id: r1, tray_type: blade}\n", []string{`machines[0].rack.tray_type`, "compute, switch, powershelf"}},
		{"plain-text password", minimal + "users:\n  - {name: admin, role: admin, password_hash: hunter2}\n", []string{"users[0].password_hash (line 8): is not a bcrypt hash"}},
		{"MQTT user writing NICO/", minimal + "mqtt:\n  users:\n    - name: agent\n      password_hash: '$2b$10$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'\n      acl: [{topic: 'NICO/#', access: readwrite}]\n",
			[]string{"mqtt.users[0].acl[0].access", "only Slipway publishes", "grant read there"}},
		{"MQTT write rule on every topic", minimal + "mqtt:\n  users:\n    - name: agent\n      password_hash: '$2b$10$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'\n      acl: [{topic: '#', access: write}]\n",
			[]string{"mqtt.users[0].acl[0].access"}},
		{"bad MQTT topic filter", minimal + "mqtt:\n  users:\n    - name: agent\n      password_hash: '$2b$10$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'\n      acl: [{topic: 'site/#/x', access: read}]\n",
			[]string{`mqtt.users[0].acl[0].topic (line 11): "site/#/x" is not an MQTT topic filter`}},
		{"unknown MQTT access", minimal + "mqtt:\n  users:\n    - name: agent\n      password_hash: '$2b$10$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'\n      acl: [{topic: 'site/#', access: all}]\n",
			[]string{`mqtt.users[0].acl[0].access (line 11): "all" is not allowed`}},
		{"MQTT user without bcrypt", minimal + "mqtt:\n  users:\n    - {name: agent, password_hash: secret}\n", []string{"mqtt.users[0].password_hash (line 9): is not a bcrypt hash"}},
		{"timeout for a state that has none", minimal + "lifecycle:\n  timeouts: {ready: 1h}\n", []string{"lifecycle.timeouts.ready (line 8): no timeout applies to this state"}},
		{"timeout too short", minimal + "lifecycle:\n  timeouts: {hostinit: 5s}\n", []string{"lifecycle.timeouts.hostinit (line 8): 5s is too short"}},
		{"cloud-init template outside the templates", minimal + "profiles:\n  p: {kernel: k, cloud_init: ../../etc/passwd}\n", []string{"profiles.p.cloud_init"}},
		{"boot file escapes root", minimal + "netboot:\n  boot_files:\n    bios: ../../etc/shadow\n", []string{"netboot.boot_files.bios (line 9)", "not a path inside the TFTP root"}},
		{"unknown netboot policy", minimal + "netboot:\n  unknown_machines: wipe\n", []string{`netboot.unknown_machines (line 8): "wipe" is not allowed; use one of: install, local, ignore`}},
		{"unknown caller check", minimal + "netboot:\n  caller_check: trust\n", []string{`netboot.caller_check (line 8): "trust" is not allowed; use one of: address, off`}},
		{"unknown discovery door", minimal + "discovery:\n  doors: [dhcp, tftp, dhcp]\n", []string{`discovery.doors[1] (line 8): "tftp" is not allowed; use one of: dhcp, boot, cloud-init, heartbeat`, `discovery.doors[2] (line 8): "dhcp" is listed twice`}},
		{"no discovery door", minimal + "discovery:\n  doors: []\n", []string{"discovery.doors (line 8): no door may discover a machine", "netboot.unknown_machines: ignore"}},
		{"discovery bounds", minimal + "discovery:\n  max_machines: -1\n  expire_after: 5m\n", []string{"discovery.max_machines (line 8): -1 is negative", "discovery.expire_after (line 9): 5m0s is too short"}},
		{"ignore_unknown against local", minimal + "  ignore_unknown: true\nnetboot:\n  unknown_machines: local\n", []string{"dhcp.ignore_unknown (line 7)", "older spelling"}},
		{"relayed subnet without a router", minimal + "  subnets:\n    - {subnet: 10.89.0.0/24, range: {start: 10.89.0.10, end: 10.89.0.20}}\n", []string{"dhcp.subnets[0].router (line 8): is required", "the relay's address on 10.89.0.0/24"}},
		{"relayed subnet overlapping the LAN", minimal + "  subnets:\n    - {subnet: 10.88.0.0/16, router: 10.88.0.2, range: {start: 10.88.1.10, end: 10.88.1.20}}\n", []string{"dhcp.subnets[0].subnet (line 8): 10.88.0.0/16 overlaps 10.88.0.0/24 (lan.address)"}},
		{"relayed subnet with host bits", minimal + "  subnets:\n    - {subnet: 10.89.0.1/24, router: 10.89.0.1, range: {start: 10.89.0.10, end: 10.89.0.20}}\n", []string{"has host bits set", "10.89.0.0/24"}},
		{"relayed range off its subnet", minimal + "  subnets:\n    - {subnet: 10.89.0.0/24, router: 10.89.0.1, range: {start: 10.88.0.10, end: 10.89.0.20}}\n", []string{"dhcp.subnets[0].range.start (line 8): 10.88.0.10 is outside the subnet 10.89.0.0/24"}},
		{"relayed reservation off its subnet", minimal + "  subnets:\n    - subnet: 10.89.0.0/24\n      router: 10.89.0.1\n      range: {start: 10.89.0.10, end: 10.89.0.20}\n      reservations: [{mac: '02:00:00:00:00:01', ip: 10.88.0.5}]\n", []string{"dhcp.subnets[0].reservations[0].ip", "outside the subnet 10.89.0.0/24"}},
		{"two relayed subnets overlapping", minimal + "  subnets:\n    - {subnet: 10.89.0.0/24, router: 10.89.0.1, range: {start: 10.89.0.10, end: 10.89.0.20}}\n    - {subnet: 10.89.0.0/25, router: 10.89.0.1, range: {start: 10.89.0.30, end: 10.89.0.40}}\n", []string{"dhcp.subnets[1].subnet", "overlaps 10.89.0.0/24 (dhcp.subnets[0])"}},
		{"relayed subnets in proxy mode", minimal + "  mode: proxy\n  subnets:\n    - {subnet: 10.89.0.0/24, router: 10.89.0.1, range: {start: 10.89.0.10, end: 10.89.0.20}}\n", []string{"relayed subnets need dhcp.mode full"}},
		{"MQTT limits out of range", minimal + "mqtt:\n  max_packet_kib: 0\n  connect_timeout: 0s\n", []string{"mqtt.max_packet_kib (line 8): 0 is out of range", "mqtt.connect_timeout (line 9): 0s is out of range"}},
		{"not YAML", "lan: [", []string{"(file): not valid YAML"}},
		{"list where a mapping belongs", minimal + "log: [1, 2]\n", []string{"log (line 7)", "expected a mapping"}},
		{"a key written twice", minimal + "tftp: {root: /srv/tftp}\ntftp: {port: 69}\n", []string{`tftp (line 8): mapping key "tftp" already defined at line 7`, "merge the two"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse accepted an invalid config")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
		})
	}
}

func TestRelayedSubnetsInheritWhatTheyLeaveOut(t *testing.T) {
	cfg, err := Parse([]byte(minimal + `  lease_time: 3h
  dns: [10.88.0.1]
  domain: lab.example
  subnets:
    - subnet: 10.89.0.0/24
      router: 10.89.0.1
      range: {start: 10.89.0.10, end: 10.89.0.20}
    - subnet: 10.90.0.0/24
      router: 10.90.0.1
      range: {start: 10.90.0.10, end: 10.90.0.20}
      lease_time: 30m
      dns: [10.90.0.53]
      domain: rack2.example
`))
	if err != nil {
		t.Fatal(err)
	}
	nets := cfg.Networks()
	if len(nets) != 3 || nets[0].Prefix.String() != "10.88.0.0/24" {
		t.Fatalf("networks = %+v", nets)
	}
	inherits, own := nets[1], nets[2]
	if inherits.LeaseTime != 3*time.Hour || len(inherits.DNS) != 1 || inherits.DNS[0].String() != "10.88.0.1" || inherits.Domain != "lab.example" || inherits.Router.String() != "10.89.0.1" {
		t.Errorf("a subnet that sets nothing = %+v", inherits)
	}
	if own.LeaseTime != 30*time.Minute || own.DNS[0].String() != "10.90.0.53" || own.Domain != "rack2.example" || own.Start.String() != "10.90.0.10" {
		t.Errorf("a subnet that sets its own = %+v", own)
	}
}

func TestEmptyFileMeansDefaultsAndReportsTheLAN(t *testing.T) {
	_, err := Parse(nil)
	if err == nil || !strings.Contains(err.Error(), "lan.interface: is required") || !strings.Contains(err.Error(), "lan.address: is required") {
		t.Fatalf("want the two LAN fields reported, got %v", err)
	}
}

func TestLoadReportsAMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
	if !os.IsNotExist(errorsUnwrapAll(err)) {
		t.Fatalf("want a not-exist error, got %v", err)
	}
}

func errorsUnwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("..", "..", "slipway.example.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(minimal))
	f.Add([]byte("lan: &a {interface: *a}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err == nil && !cfg.LANIP().IsValid() {
			t.Fatal("accepted a config without a valid LAN address")
		}
	})
}

func TestSelfReferentialAliasesAreRefused(t *testing.T) {
	for _, doc := range []string{
		"lan: &a {interface: *a}\n",
		"a: &a [*a, *a]\nlan: &b {interface: *b, address: *b}\n",
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("Parse(%q) accepted a recursive document", doc)
		}
	}
}

func TestMachinesOnOneBMCNameTheirSystems(t *testing.T) {
	_, err := Parse([]byte(minimal + `machines:
  - {id: a, macs: ['52:54:00:00:00:01'], bmc: {endpoint: 'https://10.88.1.2', credentials: x, system: Blade1}}
  - {id: b, macs: ['52:54:00:00:00:02'], bmc: {endpoint: 'https://10.88.1.2', credentials: x, system: /redfish/v1/Systems/Blade2}}
`))
	if err == nil || strings.Contains(err.Error(), "is the BMC of") || !strings.Contains(err.Error(), `"x" is not defined`) {
		t.Fatalf("two systems of one BMC: %v", err)
	}
}

// Unknown fields, values of the wrong type and invalid values are all
// reported in one pass; a field that could not be read is not reported
// again by the checks that follow.
func TestEveryKindOfProblemInOnePass(t *testing.T) {
	_, err := Parse([]byte(`
lan:
  interface: eth1
  address: [10.88.0.1]
dhcp:
  range: {start: 10.88.0.100, end: 10.88.0.199}
  lease_time: one hour
  colour: blue
http:
  port: 70000
`))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("%v", err)
	}
	got := err.Error()
	for _, want := range []string{"lan.address (line 4)", "dhcp.lease_time (line 7)", "dhcp.colour (line 8): unknown field", "http.port (line 10): 70000 is not a port number"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Count(got, "lan.address") != 1 {
		t.Errorf("lan.address reported twice:\n%s", got)
	}
}

// The files a configuration names are checked where it runs, with their
// lines: a missing password file is reported by check-config, not found
// by serve half way through its start.
func TestCheckFilesNamesMissingAndEmptyFiles(t *testing.T) {
	dir := t.TempDir()
	empty, good := filepath.Join(dir, "empty"), filepath.Join(dir, "good")
	os.WriteFile(empty, []byte("\n"), 0o600)
	os.WriteFile(good, []byte("s3cret\n"), 0o600)
	cfg, err := Parse([]byte(minimal + `bmc_credentials:
  a: {username: root, password_file: ` + filepath.Join(dir, "missing") + `}
  b: {username: root, password_file: ` + empty + `}
  c: {username: root, password_file: ` + good + `}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.CheckFiles()
	for _, want := range []string{"bmc_credentials.a.password_file (line 8): " + filepath.Join(dir, "missing") + " cannot be read: no such file or directory",
		"bmc_credentials.b.password_file (line 9): " + empty + " is empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "bmc_credentials.c") {
		t.Errorf("a good file was reported:\n%v", err)
	}
}

// A key written twice stops the decoder reading its whole mapping: the
// error says so and nothing else, not that every setting is missing.
func TestAKeyWrittenTwiceIsTheOnlyError(t *testing.T) {
	_, err := Parse([]byte("lan: {interface: lan0, address: 10.88.0.1/24}\ntftp: {root: /x}\ntftp: {port: 69}\n"))
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 {
		t.Fatalf("want one error, the key written twice; got:\n%v", err)
	}
}

// A site that lists 10,000 machines with their racks and BMCs loads (its
// file is larger than a megabyte); a file past the bound is refused by
// its size alone, with the fix.
func TestASiteOfTenThousandListedMachinesLoads(t *testing.T) {
	var b strings.Builder
	b.WriteString(minimal + "bmc_credentials: {lab: {username: root, password_file: /dev/null}}\nmachines:\n")
	for i := range 10_000 {
		fmt.Fprintf(&b, "  - {id: m%05d, macs: [\"02:00:00:%02x:%02x:%02x\"], hostname: node-%05d, rack: {id: row%d-r%03d, tray: %d, tray_type: compute}, bmc: {endpoint: \"https://10.90.%d.%d\", credentials: lab}}\n",
			i, i>>16&255, i>>8&255, i&255, i, i/1000, i/40, i%40, i/250, i%250+1)
	}
	if b.Len() < 1<<20 {
		t.Fatalf("the site's file is only %d bytes", b.Len())
	}
	cfg, err := Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Machines) != 10_000 {
		t.Fatalf("%d machines", len(cfg.Machines))
	}
	huge := make([]byte, maxFileSize+1)
	if _, err := Parse(huge); err == nil || !strings.Contains(err.Error(), "check that the right file was named") {
		t.Fatalf("a file past the bound: %v", err)
	}
}
