//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

// slipwayBinary is built once per test run, from this checkout.
var slipwayBinary string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("e2e tests need root (network namespaces); run: sudo make e2e")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "slipway-e2e-")
	if err != nil {
		panic(err)
	}
	slipwayBinary = filepath.Join(dir, "slipway")
	build := exec.Command("go", "build", "-o", slipwayBinary, "../..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Printf("building slipway: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireCommands skips the test, naming the Debian package, when a peer
// client is missing (make e2e installs them).
func requireCommands(t *testing.T, cmdToPackage map[string]string) {
	t.Helper()
	for cmd, pkg := range cmdToPackage {
		if _, err := exec.LookPath(cmd); err != nil {
			missingPeer(t, "%s is missing: install Debian's %s (make e2e-deps does)", cmd, pkg)
		}
	}
}

// missingPeer skips a test whose peer is missing (fails it in CI).
func missingPeer(t *testing.T, format string, args ...any) {
	t.Helper()
	testkit.MissingPeer(t, format, args...)
}

// newLAN builds a namespace LAN named after the test and removes it after.
func newLAN(t *testing.T, serverCIDR string) *testbed.LAN {
	t.Helper()
	prefix := fmt.Sprintf("sw%d%s", os.Getpid()%10000, shortName(t.Name()))
	lan, err := testbed.NewLAN(context.Background(), prefix, serverCIDR)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lan.Close(); err != nil {
			t.Error(err)
		}
	})
	return lan
}

func shortName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' && b.Len() < 4 {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// appliance is a slipway process serving inside a namespace.
type appliance struct {
	cmd      *exec.Cmd
	dataDir  string
	tftpRoot string
	config   string
	host     testbed.Host
	url      string // where it answers HTTP: lanURL unless the config says otherwise
	mu       sync.Mutex
	log      strings.Builder
	done     chan error
	vms      int // virtual machines started on its LAN, to name their taps
}

func (a *appliance) logs() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.String()
}

// startServe writes config to a file and runs `slipway serve` with it in
// host's namespace.
func startServe(t *testing.T, host testbed.Host, config string) *appliance {
	t.Helper()
	return prepareServe(t, host, config, nil)
}

// prepareServe is startServe with a hook that fills the data directory first.
func prepareServe(t *testing.T, host testbed.Host, config string, prepare func(dataDir string)) *appliance {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "slipway.yaml")
	config = strings.ReplaceAll(config, "DATA_DIR", filepath.Join(dir, "data"))
	config = strings.ReplaceAll(config, "TFTP_ROOT", filepath.Join(dir, "tftp"))
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &appliance{dataDir: filepath.Join(dir, "data"), tftpRoot: filepath.Join(dir, "tftp"), config: path, host: host, url: lanURL}
	if err := os.MkdirAll(a.tftpRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(a.dataDir)
	}
	a.launch(t)
	t.Cleanup(func() {
		if a.cmd.ProcessState == nil {
			// A clean stop first, so that a profile asked for by
			// SLIPWAY_CPUPROFILE is written; a kill if it hangs.
			if exited, _ := a.terminate(10 * time.Second); !exited {
				a.cmd.Process.Kill()
				<-a.done
			}
		}
		if t.Failed() {
			t.Logf("slipway log:\n%s", a.logs())
		}
	})
	return a
}

// launch starts `slipway serve` on the appliance's config.
func (a *appliance) launch(t *testing.T) {
	t.Helper()
	a.done = make(chan error, 1)
	a.cmd = a.host.Command(context.Background(), slipwayBinary, "serve", "--config", a.config)
	a.cmd.Env = os.Environ() // passes SLIPWAY_CPUPROFILE through, for profiling a benchmark
	stderr, err := a.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go a.collect(stderr)
}

func (a *appliance) collect(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		a.mu.Lock()
		a.log.WriteString(sc.Text() + "\n")
		a.mu.Unlock()
	}
	a.done <- a.cmd.Wait()
}

// lanURL is where the appliance answers HTTP in every e2e configuration.
const lanURL = "http://10.88.0.1:8080"

// The API user every e2e configuration has (a cheap bcrypt cost: the
// crash test makes a thousand authenticated requests).
const (
	e2eUser         = "e2e"
	e2ePassword     = "e2e-password"
	e2ePasswordHash = "$2a$04$zvBe6ezz//8Hlf.cFF4R0.xBhDtXDRcjmjaxsR8eJ8gvA8PrzRqMG"
	e2eUserYAML     = "  - {name: e2e, role: admin, password_hash: '" + e2ePasswordHash + "'}\n"
)

// lanBase starts the configurations of the tests on a namespace LAN: the
// server's LAN, HTTP on lanURL, the per-test directories, the e2e user.
const lanBase = `
lan: {interface: lan0, address: 10.88.0.1/24}
data_dir: DATA_DIR
http: {port: 8080}
tftp: {root: TFTP_ROOT}
users:
` + e2eUserYAML

// serveReady runs `slipway serve` with config on lan's server and waits
// until it is ready.
func serveReady(t *testing.T, lan *testbed.LAN, config string) *appliance {
	t.Helper()
	a := startServe(t, lan.Server, config)
	waitReady(t, a)
	return a
}

// waitReady polls /readyz from inside the appliance's namespace until it answers 200.
func waitReady(t *testing.T, a *appliance) {
	t.Helper()
	host, url := a.host, a.url
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-a.done:
			a.done <- err
			t.Fatalf("slipway exited before it was ready: %v\n%s", err, a.logs())
		default:
		}
		out, err := host.Run(context.Background(), "curl", "-fsS", "--max-time", "2", url+"/readyz")
		if err == nil && strings.Contains(out, `"ready"`) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("slipway not ready at %s after 20s\n%s", url, a.logs())
}

// stop sends SIGTERM and waits for a clean exit.
func (a *appliance) stop(t *testing.T) {
	t.Helper()
	exited, err := a.terminate(20 * time.Second)
	switch {
	case !exited:
		t.Fatalf("slipway did not stop within 20s of SIGTERM\n%s", a.logs())
	case err != nil:
		t.Fatalf("slipway exited with %v after SIGTERM\n%s", err, a.logs())
	}
}

// terminate sends SIGTERM and waits up to within for the exit: whether it
// came (or the process could not be signalled), and its error (nil for a
// clean exit).
func (a *appliance) terminate(within time.Duration) (exited bool, err error) {
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return true, fmt.Errorf("SIGTERM: %w", err)
	}
	select {
	case err := <-a.done:
		return true, err
	case <-time.After(within):
		return false, nil
	}
}

// metricLines are the lines of a /metrics page whose names start with
// one of prefixes.
func metricLines(metrics string, prefixes ...string) string {
	var kept []string
	for _, line := range strings.Split(metrics, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				kept = append(kept, line)
				break
			}
		}
	}
	return strings.Join(kept, "\n")
}
