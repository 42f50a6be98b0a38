package testkit

import (
	"context"
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

// Mosquitto is a real mosquitto broker run for a test.
type Mosquitto struct {
	Addr string // 127.0.0.1, or the host's address on a namespace LAN
	Port int
	conf string
	tb   TB
	on   Runner // nil: this machine's own network
	bin  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	log    *LockedBuffer
	exited chan struct{} // closed when it exits; nil once stopped
}

// Runner makes a command run on a host of a namespace LAN (its Command).
type Runner func(ctx context.Context, name string, args ...string) *exec.Cmd

// StartMosquitto runs Debian's mosquitto with a listener on 127.0.0.1 at
// a free port and the given configuration lines after it, and stops it
// when the test ends. Without mosquitto the test is skipped (failed in CI).
func StartMosquitto(tb Skipper, conf ...string) *Mosquitto {
	tb.Helper()
	return StartMosquittoOn(tb, nil, "127.0.0.1", conf...)
}

// StartMosquittoOn is StartMosquitto on a host of a namespace LAN, which on
// runs commands on, listening on addr (its address there).
func StartMosquittoOn(tb Skipper, on Runner, addr string, conf ...string) *Mosquitto {
	tb.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto" // Debian's, off a user's PATH
		if _, err := os.Stat(bin); err != nil {
			MissingPeer(tb, "mosquitto is missing: install Debian's mosquitto (make e2e-deps does)")
		}
	}
	m := &Mosquitto{Addr: addr, Port: FreePort(tb, "tcp"), tb: tb, on: on}
	dir := tb.TempDir()
	m.conf = filepath.Join(dir, "mosquitto.conf")
	// user root: as root, mosquitto would otherwise drop to the user
	// mosquitto, who cannot write its persistence into the test's directory.
	lines := append([]string{"user root", "listener " + strconv.Itoa(m.Port) + " " + addr, "allow_anonymous true", "persistence_location " + dir + "/"}, conf...)
	if err := os.WriteFile(m.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		tb.Fatalf("write mosquitto.conf: %v", err)
	}
	m.bin = bin
	m.start()
	tb.Cleanup(func() {
		m.Stop()
		if f, ok := tb.(interface{ Failed() bool }); ok && f.Failed() {
			fmt.Fprintf(os.Stderr, "mosquitto's log:\n%s\n", m.Log())
		}
	})
	return m
}

// URL is the broker's mqtt:// address.
func (m *Mosquitto) URL() string { return fmt.Sprintf("mqtt://%s:%d", m.Addr, m.Port) }

// Restart starts the broker again after Stop, on the same port.
func (m *Mosquitto) Restart() {
	m.tb.Helper()
	m.start()
}

func (m *Mosquitto) start() {
	m.tb.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.log = &LockedBuffer{}
	m.cmd = m.command(m.bin, "-c", m.conf)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		m.tb.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan struct{})
	go func(cmd *exec.Cmd) { cmd.Wait(); close(exited) }(m.cmd)
	deadline := time.Now().Add(10 * time.Second)
	for !m.listening() {
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

func (m *Mosquitto) command(name string, args ...string) *exec.Cmd {
	if m.on == nil {
		return exec.Command(name, args...)
	}
	return m.on(context.Background(), name, args...)
}

// listening says whether the broker accepts connections: on this
// machine's network a dial says; in a namespace, a connect from there.
func (m *Mosquitto) listening() bool {
	if m.on == nil {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(m.Addr, strconv.Itoa(m.Port)), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	return m.on(context.Background(), "mosquitto_pub", "-h", m.Addr, "-p", strconv.Itoa(m.Port), "-t", "probe", "-n").Run() == nil
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

// LockedBuffer collects a process's output while a test reads it.
type LockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
