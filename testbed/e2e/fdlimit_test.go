//go:build e2e

package e2e

import (
	"fmt"
	"net"
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
	config, httpPort, mqttPort := loopbackConfig(t, filepath.Join(t.TempDir(), "data"))
	// Every listener: HTTPS and MQTT over WebSocket too.
	more := testkit.FreePorts(t, "tcp", 2)
	httpsPort, wsPort := more[0], more[1]
	config = strings.Replace(config, "https: {port: 0}", fmt.Sprintf("https: {port: %d}", httpsPort), 1)
	config = strings.Replace(config, "websocket_port: 0", fmt.Sprintf("websocket_port: %d", wsPort), 1)
	a := startServe(t, testbed.Host{}, config)
	a.url = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitReady(t, a)

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

	for _, c := range held {
		c.Close()
	}
	held = nil
	alive(t, a)
	if code, body := testkit.Request(t, "GET", a.url+"/readyz", "", "", ""); code != 200 {
		t.Fatalf("/readyz after the shortage: %d %s", code, body)
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
