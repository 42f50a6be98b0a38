package testkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Mosquitto is a real mosquitto broker run for a test, on 127.0.0.1.
type Mosquitto struct {
	Port int
	conf string
	tb   TB

	mu     sync.Mutex
	cmd    *exec.Cmd
	log    *lockedLog
	exited chan struct{} // closed when it exits; nil once stopped
}

// StartMosquitto runs Debian's mosquitto with a listener on a free port
// and the given configuration lines after it, and stops it when the test
// ends. Without mosquitto the test is skipped (failed in CI).
func StartMosquitto(tb Skipper, conf ...string) *Mosquitto {
	tb.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto" // Debian's, off a user's PATH
		if _, err := os.Stat(bin); err != nil {
			MissingPeer(tb, "mosquitto is missing: install Debian's mosquitto (make e2e-deps does)")
		}
	}
	m := &Mosquitto{Port: FreePort(tb, "tcp"), tb: tb}
	dir := tb.TempDir()
	m.conf = filepath.Join(dir, "mosquitto.conf")
	// user root: as root, mosquitto would otherwise drop to the user
	// mosquitto, who cannot write its persistence into the test's directory.
	lines := append([]string{"user root", "listener " + strconv.Itoa(m.Port) + " 127.0.0.1", "allow_anonymous true", "persistence_location " + dir + "/"}, conf...)
	if err := os.WriteFile(m.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		tb.Fatalf("write mosquitto.conf: %v", err)
	}
	m.start(bin)
	tb.Cleanup(func() {
		m.Stop()
		if f, ok := tb.(interface{ Failed() bool }); ok && f.Failed() {
			fmt.Fprintf(os.Stderr, "mosquitto's log:\n%s\n", m.Log())
		}
	})
	return m
}

// URL is the broker's mqtt:// address.
func (m *Mosquitto) URL() string { return fmt.Sprintf("mqtt://127.0.0.1:%d", m.Port) }

// Restart starts the broker again after Stop, on the same port.
func (m *Mosquitto) Restart() {
	m.tb.Helper()
	m.start(m.cmd.Path)
}

func (m *Mosquitto) start(bin string) {
	m.tb.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.log = &lockedLog{}
	m.cmd = exec.Command(bin, "-c", m.conf)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		m.tb.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan struct{})
	go func(cmd *exec.Cmd) { cmd.Wait(); close(exited) }(m.cmd)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port)), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			m.tb.Fatalf("mosquitto exited at start: %s", m.log.String())
		default:
		}
		if time.Now().After(deadline) {
			m.tb.Fatalf("mosquitto does not listen on %d: %s", m.Port, m.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.exited = exited
}

// Stop stops the broker as its service would be (SIGTERM: a broker with
// persistence saves its sessions), and waits for it.
func (m *Mosquitto) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exited == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(5 * time.Second):
		m.cmd.Process.Kill()
		<-m.exited
	}
	m.exited = nil
}

// Pid is the running broker's process id.
func (m *Mosquitto) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd.Process.Pid
}

// Log is what mosquitto wrote.
func (m *Mosquitto) Log() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.log.String()
}

// lockedLog is a process's output, read while it is written.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
