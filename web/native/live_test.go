package native

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

func TestEventKind(t *testing.T) {
	for topic, want := range map[string]string{
		"NICO/v1/machine/m1/state":         "state",
		"slipway/v1/machine/m1/onboarding": "onboarding",
		"slipway/v1/bmc/bmc-a/state":       "bmc",
		"slipway/v1/task/t1":               "task",
		"odd":                              "message",
	} {
		if got := eventKind(topic); got != want {
			t.Errorf("eventKind(%q) = %q, want %q", topic, got, want)
		}
	}
}

// fakeBus is an event source the test publishes into.
type fakeBus struct {
	mu       sync.Mutex
	watchers map[int]func(string, []byte)
	next     int
}

func (b *fakeBus) Watch(filter string, fn func(string, []byte)) (func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.watchers == nil {
		b.watchers = map[int]func(string, []byte){}
	}
	b.next++
	id := b.next
	prefix := strings.TrimSuffix(filter, "#") // the stream only watches "X/#"
	b.watchers[id] = func(topic string, payload []byte) {
		if strings.HasPrefix(topic, prefix) {
			fn(topic, payload)
		}
	}
	return func() { b.mu.Lock(); delete(b.watchers, id); b.mu.Unlock() }, nil
}

func (b *fakeBus) publish(topic, payload string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, fn := range b.watchers {
		fn(topic, []byte(payload))
	}
}

func (b *fakeBus) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.watchers)
}

// The stream needs a login, carries each message as an event of its kind,
// and lets go of the bus when the client leaves; a shutdown ends it.
func TestLiveEventsStream(t *testing.T) {
	bus := &fakeBus{}
	s, err := newTestServer(Services{Auth: testAuth(t), Events: bus})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	url := "http://" + s.Addr().String() + "/api/v1/events"
	if resp, err := http.Get(url); err != nil || resp.StatusCode != 401 {
		t.Fatalf("anonymous stream: %v %v", resp.StatusCode, err)
	}
	req, _ := http.NewRequest("GET", url, nil)
	req.SetBasicAuth("vic", "vic-password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %v %v", resp.Header, err)
	}
	lines := bufio.NewReader(resp.Body)
	readEvent := func() string {
		var ev []string
		for {
			line, err := lines.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended: %v", err)
			}
			if line == "\n" && len(ev) > 0 {
				return strings.Join(ev, "")
			}
			if !strings.HasPrefix(line, ":") && line != "\n" && !strings.HasPrefix(line, "retry:") {
				ev = append(ev, line)
			}
		}
	}
	testkit.WaitFor(t, "the stream watching the bus", func() bool { return bus.count() == 2 })
	bus.publish("NICO/v1/machine/m1/state", `{"machine_id":"m1","managed_host_state":{"state":"ready"}}`)
	if got := readEvent(); got != "event: state\ndata: {\"topic\":\"NICO/v1/machine/m1/state\",\"message\":{\"machine_id\":\"m1\",\"managed_host_state\":{\"state\":\"ready\"}}}\n" {
		t.Errorf("event %q", got)
	}
	bus.publish("slipway/v1/bmc/bmc-a/state", ``) // a removed BMC
	if got := readEvent(); !strings.Contains(got, "event: bmc\n") || !strings.Contains(got, `"message":null`) {
		t.Errorf("event %q", got)
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an open event stream held the shutdown")
	}
	resp.Body.Close()
	testkit.WaitFor(t, "the stream letting go of the bus", func() bool { return bus.count() == 0 })
}

// fakeLeases is a lease book with a pool.
type fakeLeases struct{}

func (fakeLeases) Active() int   { return 3 }
func (fakeLeases) PoolSize() int { return 100 }

func TestOverviewLeasesAndSettings(t *testing.T) {
	db, commit := testkit.OpenStore(t)
	ctx := context.Background()
	err := commit.Do(ctx, func(tx *store.Tx) error {
		for _, id := range []string{"m1", "m2"} {
			if _, err := tx.CreateMachine(store.Machine{ID: id, Source: "config", State: "created", StateJSON: `{"state":"created"}`}, "listed"); err != nil {
				return err
			}
		}
		for _, ip := range []string{"10.0.0.10", "10.0.0.9"} {
			if err := tx.PutLease(store.Lease{IP: ip, MAC: "52:54:00:00:00:0" + ip[len(ip)-1:], State: "bound", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := newTestServer(Services{Auth: testAuth(t), Fleet: domain.Fleet{DB: db}, Leases: fakeLeases{}, BMCs: &fakeBMCs{},
		LeaseList: domain.Fleet{DB: db}, Settings: func() (string, error) { return "users:\n  - {name: ann, password_hash: (redacted)}\n", nil }})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Shutdown(ctx)
	base := "http://" + s.Addr().String()
	for _, tt := range []struct{ path, user, want string }{
		{"/api/v1/overview", "vic:vic-password", `"machines_by_state":{"created":2}`},
		{"/api/v1/overview", "vic:vic-password", `"leases":{"active":3,"pool_size":100}`},
		{"/api/v1/overview", "vic:vic-password", `"bmcs":{"reachable":1,"total":1,"unusable":0}`},
		{"/api/v1/overview", "vic:vic-password", `"cause":"listed"`},
		{"/api/v1/leases", "vic:vic-password", `"ip":"10.0.0.9"`}, // 10.0.0.9 before 10.0.0.10: by address
		{"/api/v1/settings", "vic:vic-password", `needs admin`},
		{"/api/v1/settings", "ann:ann-password", `(redacted)`},
	} {
		req, _ := http.NewRequest("GET", base+tt.path, nil)
		u, p, _ := strings.Cut(tt.user, ":")
		req.SetBasicAuth(u, p)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		resp.Body.Close()
		if !strings.Contains(b.String(), tt.want) {
			t.Errorf("GET %s as %s: %s, want %q", tt.path, u, b.String(), tt.want)
		}
		if tt.path == "/api/v1/leases" && strings.Index(b.String(), "10.0.0.9") > strings.Index(b.String(), "10.0.0.10") {
			t.Errorf("leases not by address: %s", b.String())
		}
	}
}
