package dhcp

import (
	"net"
	"reflect"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// replyTo must build what the library's NewReplyFromRequest builds.
func TestReplyToIsTheLibrarysReply(t *testing.T) {
	relayed := func(d *dhcpv4.DHCPv4) {
		d.GatewayIPAddr = net.IPv4(10, 90, 0, 1)
		d.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionRelayAgentInformation, []byte{1, 3, 'e', 't', 'h'}))
	}
	tests := []struct {
		name string
		kind dhcpv4.MessageType
		edit func(*dhcpv4.DHCPv4)
	}{
		{"discover", dhcpv4.MessageTypeDiscover, func(*dhcpv4.DHCPv4) {}},
		{"broadcast flag", dhcpv4.MessageTypeDiscover, func(d *dhcpv4.DHCPv4) { d.SetBroadcast() }},
		{"relayed", dhcpv4.MessageTypeRequest, relayed},
		{"client identifier", dhcpv4.MessageTypeRequest, func(d *dhcpv4.DHCPv4) {
			d.UpdateOption(dhcpv4.OptClientIdentifier([]byte{1, 0x52, 0x54, 0, 0, 0, 0x0a}))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := dhcpv4.NewDiscovery(clientA, dhcpv4.WithMessageType(tt.kind))
			if err != nil {
				t.Fatal(err)
			}
			tt.edit(req)
			mods := []dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer), dhcpv4.WithServerIP(serverIP.AsSlice()),
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverIP.AsSlice()))}
			want, err := dhcpv4.NewReplyFromRequest(req, mods...)
			if err != nil {
				t.Fatal(err)
			}
			if got := replyTo(req, mods...); !reflect.DeepEqual(got, want) {
				t.Errorf("replyTo:\n%s\nNewReplyFromRequest:\n%s", got.Summary(), want.Summary())
			}
		})
	}
}

func TestCountersByTypeCountEachType(t *testing.T) {
	c := newCountersByType(prometheus.CounterOpts{Name: "test_total", Help: "test"})
	for _, kind := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest} {
		c.inc(kind)
	}
	for label, want := range map[string]float64{"DISCOVER": 2, "REQUEST": 1, "ACK": 0} {
		if got := testutil.ToFloat64(c.vec.WithLabelValues(label)); got != want {
			t.Errorf("%s: %v, want %v", label, got, want)
		}
	}
}
