package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/testbed/testkit"
	"github.com/slipway/slipway/wiring"
)

// run executes the CLI in-process as main would and returns what it printed.
func run(t *testing.T, args ...string) (stdout, stderr string, failed bool) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand(&out, &errOut)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		reportError(&errOut, err)
		failed = true
	}
	return out.String(), errOut.String(), failed
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slipway.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckConfig(t *testing.T) {
	tests := []struct {
		name     string
		config   string
		failed   bool
		contains string
	}{
		{"valid", "lan: {interface: eth1, address: 10.88.0.1/24}\ndhcp: {range: {start: 10.88.0.100, end: 10.88.0.200}}\n", false, "valid (LAN 10.88.0.1/24 on eth1, DHCP full, 0 machines, 0 profiles)"},
		{"typo", "lan: {interface: eth1, adress: 10.88.0.1/24}\n", true, `slipway: ` + "%s" + `: lan.adress (line 1): unknown field; did you mean "address"?`},
		{"bad CIDR", "lan: {interface: eth1, address: 10.88.0.300/24}\n", true, `lan.address (line 1): "10.88.0.300/24" is not a CIDR address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.config)
			stdout, stderr, failed := run(t, "check-config", path)
			want := strings.ReplaceAll(tt.contains, "%s", path)
			if failed != tt.failed || !strings.Contains(stdout+stderr, want) {
				t.Fatalf("failed=%v\nstdout: %s\nstderr: %s\nwant %q", failed, stdout, stderr, want)
			}
		})
	}
}

func TestServeRefusesAnAddressNotOnTheInterfaceInOneLine(t *testing.T) {
	// 192.0.2.1 is TEST-NET-1: never assigned here, and nothing is sent to it.
	path := writeConfig(t, "lan: {interface: lo, address: 192.0.2.1/24}\ndata_dir: "+t.TempDir()+
		"\ndhcp: {range: {start: 192.0.2.100, end: 192.0.2.200}}\n")
	_, stderr, failed := run(t, "serve", "--config", path)
	if !failed {
		t.Fatal("serve accepted an address that is not on the interface")
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], `slipway: lan.address: 192.0.2.1 is not assigned to interface "lo"`) {
		t.Fatalf("want one line naming lan.address, got:\n%s", stderr)
	}
}

func TestServeRefusesAnUnknownInterface(t *testing.T) {
	path := writeConfig(t, "lan: {interface: nosuch0, address: 10.88.0.1/24}\ndata_dir: "+t.TempDir()+
		"\ndhcp: {range: {start: 10.88.0.100, end: 10.88.0.200}}\n")
	_, stderr, failed := run(t, "serve", "--config", path)
	if !failed || !strings.HasPrefix(stderr, `slipway: lan.interface: no network interface "nosuch0" on this host`) {
		t.Fatalf("failed=%v stderr=%s", failed, stderr)
	}
}

func TestVersionAndHashPassword(t *testing.T) {
	stdout, _, _ := run(t, "version")
	if !strings.HasPrefix(stdout, "slipway dev (commit") {
		t.Fatalf("version = %q", stdout)
	}
	var out bytes.Buffer
	cmd := newRootCommand(&out, &out)
	cmd.SetIn(strings.NewReader("correct horse\n"))
	cmd.SetArgs([]string{"hash-password"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	hash := strings.TrimSpace(out.String())
	cfg := writeConfig(t, "lan: {interface: eth1, address: 10.88.0.1/24}\ndhcp: {mode: off}\nusers: [{name: admin, role: admin, password_hash: '"+hash+"'}]\n")
	if _, stderr, failed := run(t, "check-config", cfg); failed {
		t.Fatalf("hash-password output is refused by check-config: %s", stderr)
	}
}

// The demo takes flags, not a configuration file: a taken port names the
// flag that moves it.
func TestDemoOnATakenPortNamesTheFlag(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	tcp := testkit.FreePorts(t, "tcp", 3)
	_, stderr, failed := run(t, "demo", "--machines", "1", "--mqtt-port", port, "--http-port", strconv.Itoa(tcp[0]), "--mqtt-ws-port", strconv.Itoa(tcp[1]),
		"--tftp-port", strconv.Itoa(testkit.FreePort(t, "udp")), "--dhcp-port", "0", "--usm-port", strconv.Itoa(tcp[2]))
	if !failed || !strings.Contains(stderr, "change --mqtt-port") || strings.Contains(stderr, "mqtt.port") {
		t.Fatalf("failed %v, said:\n%s", failed, stderr)
	}
}

func TestCheckConfigPrintsOneValue(t *testing.T) {
	path := writeConfig(t, "lan: {interface: auto, address: 10.88.0.1/24, configure: true}\ndhcp: {range: {start: 10.88.0.100, end: 10.88.0.200}}\nimage: {state_device: LABEL=fast}\n")
	for field, want := range map[string]string{"image.state_device": "LABEL=fast\n", "lan.configure": "true\n", "data_dir": "/var/lib/slipway\n"} {
		stdout, stderr, failed := run(t, "check-config", "--value", field, path)
		if failed || stdout != want {
			t.Errorf("--value %s: %q (%s), want %q", field, stdout, stderr, want)
		}
	}
	if _, stderr, failed := run(t, "check-config", "--value", "image.nope", path); !failed || !strings.Contains(stderr, "image.nope: no such field") {
		t.Errorf("an unknown field: %s", stderr)
	}
}

func TestReadyFileSaysWhereItServes(t *testing.T) {
	cfg, err := config.Parse([]byte("lan: {interface: eth1, address: 10.88.0.1/24}\ndhcp: {range: {start: 10.88.0.100, end: 10.88.0.200}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ready")
	if err := writeReadyFile(path, cfg, wiring.URLs{HTTPS: "https://10.88.0.1:443", Fingerprint: "AB:CD", HTTP: "http://10.88.0.1:80"}, "s3cret"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	for _, line := range []string{"interface=eth1\n", "address=10.88.0.1/24\n", "console=https://10.88.0.1:443\n", "fingerprint=AB:CD\n", "http=http://10.88.0.1:80\n", "admin_password=s3cret\n"} {
		if !strings.Contains(string(got), line) {
			t.Errorf("ready file lacks %q:\n%s", line, got)
		}
	}
}
