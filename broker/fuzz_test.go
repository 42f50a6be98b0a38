package broker

import (
	"net"
	"testing"
	"time"
)

// Whatever bytes a LAN client sends the broker — a CONNECT of any version
// and any fields, then any packets — it answers or ends the connection,
// and never panics. Anonymous clients are on, so fuzzed packets reach past
// the CONNECT into subscriptions and publishes. The bytes go in over a
// pipe, as a listener hands the broker a connection.
func FuzzConnection(f *testing.F) {
	b := startBroker(f, Access{Anonymous: true})
	connect311 := []byte{0x10, 0x0c, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 0}
	connect5 := []byte{0x10, 0x0d, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 0, 0, 0}
	subscribe := []byte{0x82, 6, 0, 1, 0, 1, '#', 1}
	join := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	f.Add(join(connect311, subscribe, []byte{0xc0, 0}, []byte{0xe0, 0}))
	f.Add(join(connect5, subscribe, []byte{0x32, 8, 0, 3, 'N', 'I', 'C', 0, 1, 'x'}))
	f.Add(join(connect311, []byte{0x82, 5, 0, 1, 0, 4, '$', 'S', 'Y', 'S'}))
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0x7f})
	f.Add(join(connect5[:12], []byte{0xff, 0xff, 0xff, 0x0f}))
	f.Add([]byte{0x30, 0})
	f.Fuzz(func(t *testing.T, stream []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = b.server.EstablishConnection("tcp", server)
		}()
		client.SetDeadline(time.Now().Add(100 * time.Millisecond))
		go func() {
			// Read what the broker answers, so that its writes never block.
			buf := make([]byte, 4096)
			for {
				if _, err := client.Read(buf); err != nil {
					return
				}
			}
		}()
		client.Write(stream)
		client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("the broker still holds a connection 5 s after its client closed it (input %q)", stream)
		}
	})
}
