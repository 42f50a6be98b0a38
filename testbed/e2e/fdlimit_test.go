//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/sys/unix"

	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

// A process out of file descriptors cannot accept a connection (EMFILE).
// Slipway's listeners (HTTP, HTTPS, MQTT and MQTT over WebSocket) wait
// that out, each says why, and each accepts again once connections close: the HTTP server's stop used to take the whole
// appliance down, and the broker stopped accepting for good, silently. A
// 10,000-machine storm got there (an idle iPXE connection per machine and a
// socket per TFTP request) on a box whose limit was 20,000.
func TestOutOfFileDescriptorsIsWaitedOut(t *testing.T) {
	config, httpPort, mqttPort := loopbackConfig(t, "DATA_DIR")
	// Every listener: HTTPS and MQTT over WebSocket too.
	more := testkit.FreePorts(t, "tcp", 2)
	httpsPort, wsPort := more[0], more[1]
	config = strings.Replace(config, "https: {port: 0}", fmt.Sprintf("https: {port: %d}", httpsPort), 1)
	config = strings.Replace(config, "websocket_port: 0", fmt.Sprintf("websocket_port: %d", wsPort), 1)
	config += `profiles:
  fd: {kernel: fd/vmlinuz, cloud_init: fd.yaml}
default_profile: fd
`
	a := prepareServe(t, testbed.Host{}, config, func(dataDir string) {
		tftp := filepath.Join(filepath.Dir(dataDir), "tftp")
		for file, text := range map[string]string{
			filepath.Join(dataDir, "templates", "fd.yaml"): "#cloud-config\nhostname: {{.Hostname}}\n",
			filepath.Join(tftp, "fd", "vmlinuz"):           "a kernel in a folder",
			filepath.Join(tftp, "loader.efi"):              "a loader at the top",
		} {
			os.MkdirAll(filepath.Dir(file), 0o755)
			if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
	a.url = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitReady(t, a)
	// Machines whose iPXE or installer connection was open before the
	// shortage: what they ask for while it lasts.
	kept := make([]*keptConn, 3)
	for i := range kept {
		kept[i] = keepConn(t, a.url)
	}

	// Room for a few connections more than Slipway holds now.
	pid := a.cmd.Process.Pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	limit := uint64(len(fds) + 16)
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
		t.Fatalf("lower slipway's open files limit: %v", err)
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	ports := []int{httpPort, httpsPort, mqttPort, wsPort}
	// More waiting on each listener than there is room for in all:
	// every listener meets the limit, whichever accepts first.
	for i := range 32 * len(ports) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[i%len(ports)]))
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		held = append(held, c)
	}
	for _, listener := range []string{"listener=http ", "listener=https ", "listener=mqtt ", `listener="mqtt websocket"`} {
		testkit.WaitFor(t, "slipway to log "+listener, func() bool {
			alive(t, a)
			return strings.Contains(a.logs(), listener)
		})
	}
	if !strings.Contains(a.logs(), "LimitNOFILE") {
		t.Errorf("the warning does not say how to raise the limit:\n%s", a.logs())
	}
	// A file that cannot be opened now is "try again" (iPXE retries a
	// 503 after its Retry-After; cloud-init retries its seed), never
	// "not found" (the end of the boot) nor the fallback user-data (an
	// install without its profile).
	userData := "/cloud-init/user-data?mac=52:54:00:fd:00:01"
	for i, path := range []string{"/boot/fd/vmlinuz", "/boot/loader.efi", userData} {
		if code, retry, body := kept[i].get(t, path); code != 503 || retry != "1" {
			t.Errorf("GET %s out of descriptors: %d, Retry-After %q: %s", path, code, retry, body)
		}
	}

	for _, c := range held {
		c.Close()
	}
	held = nil
	alive(t, a)
	if code, body := testkit.Request(t, "GET", a.url+"/readyz", "", "", ""); code != 200 {
		t.Fatalf("/readyz after the shortage: %d %s", code, body)
	}
	for i, want := range map[string]string{"/boot/fd/vmlinuz": "a kernel in a folder", "/boot/loader.efi": "a loader at the top",
		userData: "hostname: node-525400fd0001"} {
		if code, _, body := keepConn(t, a.url).get(t, i); code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s after the shortage: %d %s", i, code, body)
		}
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", mqttPort)).SetClientID("after-shortage").
		SetUsername(e2eUser).SetPassword(e2ePassword).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT after the shortage: %v", tok.Error())
	}
	c.Disconnect(100)
	if out, err := exec.Command("curl", "-ksS", "--max-time", "5", fmt.Sprintf("https://127.0.0.1:%d/readyz", httpsPort)).CombinedOutput(); err != nil || !strings.Contains(string(out), `"ready"`) {
		t.Fatalf("HTTPS after the shortage: %v %s", err, out)
	}
	ws := paho.NewClient(paho.NewClientOptions().AddBroker(fmt.Sprintf("ws://127.0.0.1:%d/mqtt", wsPort)).SetClientID("ws-after-shortage").
		SetUsername(e2eUser).SetPassword(e2ePassword).SetConnectTimeout(5 * time.Second))
	if tok := ws.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT over WebSocket after the shortage: %v", tok.Error())
	}
	ws.Disconnect(100)
}

// alive fails the test if slipway has stopped.
func alive(t *testing.T, a *appliance) {
	t.Helper()
	select {
	case err := <-a.done:
		a.done <- err
		t.Fatalf("slipway stopped when it ran out of descriptors: %v\n%s", err, a.logs())
	default:
	}
}

// keptConn is an HTTP/1.1 connection kept open between requests, as iPXE
// keeps its own.
type keptConn struct {
	conn net.Conn
	rd   *bufio.Reader
	host string
}

// keepConn opens a connection to base and makes one request on it, so
// that the server has accepted it.
func keepConn(t *testing.T, base string) *keptConn {
	t.Helper()
	host := strings.TrimPrefix(base, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	k := &keptConn{conn: conn, rd: bufio.NewReader(conn), host: host}
	if code, _, body := k.get(t, "/readyz"); code != 200 {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	return k
}

// get asks for path on the kept connection: the status, the Retry-After
// header and the body.
func (k *keptConn) get(t *testing.T, path string) (code int, retryAfter, body string) {
	t.Helper()
	k.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(k.conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, k.host); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp, err := http.ReadResponse(k.rd, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
}
