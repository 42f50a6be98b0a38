package broker

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed/testkit"
)

// startLimitedBroker serves a broker with limits. The limits hold before
// login: the test clients that hit them never log in.
func startLimitedBroker(t *testing.T, l Limits) *Broker {
	t.Helper()
	return startBroker(t, Access{Anonymous: true}, func(c *Config) { c.Limits = l })
}

// hugeConnect is the start of a CONNECT whose header claims 200 MiB.
var hugeConnect = []byte{0x10, 0x80, 0x80, 0x80, 0x64}

// closedWithin says whether c is closed by the other end within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64)
	for {
		if _, err := c.Read(buf); err != nil {
			ne, timeout := err.(net.Error)
			return !(timeout && ne.Timeout())
		}
	}
}

// A CONNECT that claims a huge size is refused before anything is read
// into memory: sixteen of them, unauthenticated, cost the broker nothing.
func TestHugePacketsAreRefusedBeforeLogin(t *testing.T) {
	b := startLimitedBroker(t, Limits{})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 16 {
		c, err := net.Dial("tcp", b.Addrs()[0].String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(hugeConnect); err != nil {
			t.Fatal(err)
		}
		if !closedWithin(c, 5*time.Second) {
			t.Fatal("a CONNECT claiming 200 MiB was not refused")
		}
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.TotalAlloc - before.TotalAlloc); grew > 64<<20 {
		t.Fatalf("sixteen refused CONNECTs allocated %d MiB", grew>>20)
	}
	// A client within the limit still gets in.
	connect(t, "tcp://"+b.Addrs()[0].String())
}

// Connections past the limit are closed as they arrive, on either
// listener; one that never sends CONNECT is closed after the timeout,
// which frees its place.
func TestConnectionLimitAndConnectTimeout(t *testing.T) {
	b := startLimitedBroker(t, Limits{MaxConnections: 2, ConnectTimeout: 300 * time.Millisecond})
	var idle []net.Conn
	for _, addr := range []string{b.Addrs()[0].String(), b.Addrs()[1].String()} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	testkit.WaitFor(t, "both connections accepted", func() bool { return b.slots.open() == 2 })
	third, err := net.Dial("tcp", b.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if !closedWithin(third, time.Second) || b.Refused() != 1 {
		t.Fatalf("a third connection past a limit of two was not closed (%d refused)", b.Refused())
	}
	for _, c := range idle {
		if !closedWithin(c, 2*time.Second) {
			t.Fatal("a connection that sent no CONNECT was kept past the timeout")
		}
	}
	// Their places are free again.
	connect(t, "tcp://"+b.Addrs()[0].String())
}
