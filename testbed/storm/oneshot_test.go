package storm

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed/testkit"
)

// connStates counts the server's connections opened and closed.
type connStates struct {
	mu             sync.Mutex
	opened, closed int
}

func (c *connStates) track(_ net.Conn, s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch s {
	case http.StateNew:
		c.opened++
	case http.StateClosed, http.StateHijacked:
		c.closed++
	}
}

func (c *connStates) counts() (opened, closed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened, c.closed
}

func TestOneShotCarriesEachRequestOnItsOwnConnection(t *testing.T) {
	states := &connStates{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		io.WriteString(w, r.URL.RawQuery+"|"+string(body))
	}))
	srv.Config.ConnState = states.track
	srv.Start()
	defer srv.Close()
	client := &http.Client{Transport: oneShot{dialer: &net.Dialer{}, limit: time.Minute}}

	tests := []struct {
		method, query, body, want string
	}{
		{"GET", "mac=02:00:00:00:00:01", "", "mac=02:00:00:00:00:01|"},
		{"POST", "", `{"stage":"install","phase":"done"}`, `|{"stage":"install","phase":"done"}`},
		{"GET", "", "", "|"},
	}
	for i, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+"/x?"+tt.query, strings.NewReader(tt.body))
		if tt.body == "" {
			req.Body = nil
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.method, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != tt.want || resp.Header.Get("X-Method") != tt.method {
			t.Errorf("%s answered %d %q (method %s), want 200 %q", tt.method, resp.StatusCode, got, resp.Header.Get("X-Method"), tt.want)
		}
		testkit.WaitFor(t, "the connection closed", func() bool {
			opened, closed := states.counts()
			return opened == i+1 && closed == i+1
		})
	}
}

func TestOneShotGivesUpWithItsRequest(t *testing.T) {
	asked, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { close(asked); <-release }))
	defer srv.Close()
	defer close(release)
	client := &http.Client{Transport: oneShot{dialer: &net.Dialer{}, limit: time.Minute}}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	errs := make(chan error, 1)
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errs <- err
	}()
	<-asked // the request is on the wire, its answer awaited
	cancel()
	if err := <-errs; err == nil || !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "closed") {
		t.Errorf("a canceled request answered %v, want it given up", err)
	}
}
