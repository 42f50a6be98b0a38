package native

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

func TestEventKind(t *testing.T) {
	for topic, want := range map[string]string{
		"NICO/v1/machine/m1/state":         "state",
		"slipway/v1/machine/m1/onboarding": "onboarding",
		"slipway/v1/bmc/bmc-a/state":       "bmc",
		"slipway/v1/task/t1":               "task",
		"slipway/v1/usm/deploy":            "usm",
		"odd":                              "message",
	} {
		if got := eventKind(topic); got != want {
			t.Errorf("eventKind(%q) = %q, want %q", topic, got, want)
		}
	}
}

// feed is a real outbox feed on a fresh store, and a way to commit
// announcements into it.
type feed struct {
	*outbox.Feed
	o  *outbox.Outbox
	db *store.Store
}

func newFeed(t *testing.T) feed {
	t.Helper()
	db, commit := testkit.OpenStore(t)
	o := outbox.New(outbox.Config{DB: db, Commit: commit})
	f, err := o.NewFeed(context.Background(), "console")
	if err != nil {
		t.Fatal(err)
	}
	testkit.RunUntilStopped(t, f.Run)
	return feed{Feed: f, o: o, db: db}
}

func (f feed) publish(t *testing.T, topic, payload string) {
	t.Helper()
	if err := f.db.Update(context.Background(), func(tx *store.Tx) error {
		outbox.Enqueue(tx, outbox.Message{Topic: topic, Payload: []byte(payload), QoS: 1, Retain: true})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.o.Filled()
}

// eventReader reads one Server-Sent Event at a time, without comments.
func eventReader(t *testing.T, r *bufio.Reader) func() string {
	return func() string {
		t.Helper()
		var ev []string
		for {
			line, err := r.ReadString('\n')
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
}

// The stream needs a login, carries each committed announcement as an
// event of its kind with its outbox id, gives a reconnecting client what it
// missed (Last-Event-ID) before the live events, lets go of its
// subscription when the client leaves, and ends on shutdown.
func TestLiveEventsStream(t *testing.T) {
	bus := newFeed(t)
	s, err := newTestServer(Services{Auth: testAuth(t), Events: bus, EventsPing: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	url := "http://" + s.Addr().String() + "/api/v1/events"
	if resp, err := http.Get(url); err != nil || resp.StatusCode != 401 {
		t.Fatalf("anonymous stream: %v %v", resp.StatusCode, err)
	}
	open := func(lastID string) (*http.Response, func() string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.SetBasicAuth("vic", "vic-password")
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("stream: %v %v", resp, err)
		}
		return resp, eventReader(t, bufio.NewReader(resp.Body))
	}
	resp, readEvent := open("")
	testkit.WaitFor(t, "the stream subscribed", func() bool { return bus.Subscribers() == 1 })
	bus.publish(t, "NICO/v1/machine/m1/state", `{"machine_id":"m1","managed_host_state":{"state":"ready"}}`)
	if got := readEvent(); got != "id: 1\nevent: state\ndata: {\"topic\":\"NICO/v1/machine/m1/state\",\"message\":{\"machine_id\":\"m1\",\"managed_host_state\":{\"state\":\"ready\"}}}\n" {
		t.Errorf("event %q", got)
	}
	bus.publish(t, "slipway/v1/bmc/bmc-a/state", ``) // a removed BMC
	if got := readEvent(); !strings.HasPrefix(got, "id: 2\nevent: bmc\n") || !strings.Contains(got, `"message":null`) {
		t.Errorf("event %q", got)
	}
	// Away for two events, back with the last id it saw: those first. (The
	// server finds a client gone when it next writes to it.)
	resp.Body.Close()
	bus.publish(t, "slipway/v1/task/t1", `{"task_id":"t1","step":"one"}`)
	bus.publish(t, "slipway/v1/task/t1", `{"task_id":"t1","step":"two"}`)
	testkit.WaitFor(t, "the stream letting go", func() bool { return bus.Subscribers() == 0 })
	testkit.WaitFor(t, "the feed past both", func() bool {
		at, _, _ := bus.db.Cursor(context.Background(), "console")
		return at == 4
	})
	resp, readEvent = open("2")
	if got := readEvent(); !strings.HasPrefix(got, "id: 3\nevent: task\n") || !strings.Contains(got, `"step":"one"`) {
		t.Errorf("first missed event %q", got)
	}
	if got := readEvent(); !strings.HasPrefix(got, "id: 4\n") || !strings.Contains(got, `"step":"two"`) {
		t.Errorf("second missed event %q", got)
	}
	bus.publish(t, "NICO/v1/machine/m2/state", `{"machine_id":"m2"}`)
	if got := readEvent(); !strings.HasPrefix(got, "id: 5\nevent: state\n") {
		t.Errorf("live event after the replay %q", got)
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
	testkit.WaitFor(t, "the stream letting go at shutdown", func() bool { return bus.Subscribers() == 0 })
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

func TestWriteEventIsOneLineOfJSON(t *testing.T) {
	tests := []struct {
		name, topic, payload, want string
	}{
		{"state", "NICO/v1/machine/m1/state", `{"state":"ready"}`, `{"topic":"NICO/v1/machine/m1/state","message":{"state":"ready"}}`},
		{"cleared retained", "NICO/v1/machine/m1/state", "", `{"topic":"NICO/v1/machine/m1/state","message":null}`},
		{"not JSON", "slipway/v1/machine/m1/onboarding", "{oops", `{"topic":"slipway/v1/machine/m1/onboarding","message":null}`},
		{"over lines", "slipway/v1/machine/m1/onboarding", "{\n  \"a\": [1,\r\n 2]\n}", `{"topic":"slipway/v1/machine/m1/onboarding","message":{"a":[1,2]}}`},
		{"quote in topic", `slipway/v1/"x"/bmc`, `1`, `{"topic":"slipway/v1/\"x\"/bmc","message":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			w := bufio.NewWriter(&out)
			writeEvent(w, outbox.Event{ID: 7, Message: outbox.Message{Topic: tt.topic, Payload: []byte(tt.payload)}})
			w.Flush()
			lines := strings.Split(out.String(), "\n")
			if len(lines) != 5 || lines[0] != "id: 7" || lines[2] != "data: "+tt.want || lines[3] != "" {
				t.Errorf("wrote %q, want the data line %q", out.String(), tt.want)
			}
			if data := strings.TrimPrefix(lines[2], "data: "); !json.Valid([]byte(data)) {
				t.Errorf("data %q is not JSON", data)
			}
		})
	}
}
