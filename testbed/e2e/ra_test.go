//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRouterSolicitationsAreAnswered: rdisc6 (Debian's ndisc6) solicits a
// router on the LAN and reads Slipway's answer: no router, no DHCPv6.
func TestRouterSolicitationsAreAnswered(t *testing.T) {
	requireCommands(t, map[string]string{"rdisc6": "ndisc6"})
	lan := newLAN(t, "10.88.0.1/24")
	client, err := lan.AddHost(context.Background(), "v6", "")
	if err != nil {
		t.Fatal(err)
	}
	serveReady(t, lan, dhcpConfig)
	// The client's link-local address needs a moment of duplicate address detection.
	var out string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if out, err = client.Run(context.Background(), "rdisc6", "-1", "-w", "1000", "eth0"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no router advertisement: %v\n%s", err, out)
	}
	t.Logf("rdisc6:\n%s", out)
	for _, want := range []string{"Stateful address conf.    :           No", "Stateful other conf.      :           No", "Router lifetime           :            0"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("rdisc6 does not show %q", want)
		}
	}
}
