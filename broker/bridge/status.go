package bridge

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Status is how the bridge is doing, for /readyz, /metrics and the console.
type Status struct {
	URL       string    `json:"url"` // without credentials
	Site      string    `json:"site"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since"` // connected, or not, since
	// Backlog is how many events wait to be sent up, and Lag how long the
	// oldest of them has waited.
	Backlog     int64         `json:"backlog"`
	Lag         time.Duration `json:"-"`
	LagSeconds  float64       `json:"lag_seconds"`
	Sent        int64         `json:"sent"`
	Dropped     int64         `json:"dropped"` // past bridge.max_backlog
	LastError   string        `json:"last_error,omitempty"`
	LastErrorAt time.Time     `json:"last_error_at,omitzero"`
	// CatchUp is the last time events that waited were sent.
	CatchUp *CatchUp `json:"last_catch_up,omitempty"`
}

// CatchUp is a backlog sent after a connect: how many, how fast.
type CatchUp struct {
	Events    int       `json:"events"`
	Seconds   float64   `json:"seconds"`
	PerSecond float64   `json:"per_second"`
	At        time.Time `json:"at"`
}

// tracker keeps the Status as the bridge's goroutine changes it.
type tracker struct {
	mu sync.Mutex
	s  Status
	// logged is the error last logged and when, for shouldLog.
	logged   string
	loggedAt time.Time
}

func newTracker(cfg Config, shownURL string) *tracker {
	return &tracker{s: Status{URL: shownURL, Site: cfg.Site, Since: cfg.Now()}}
}

// Status is the bridge's status now.
func (b *Bridge) Status() Status {
	b.status.mu.Lock()
	defer b.status.mu.Unlock()
	return b.status.s
}

func (t *tracker) connected(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.s.Connected, t.s.Since = true, now
	t.logged = "" // the next failure is news
}

func (t *tracker) failed(err error, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.s.Connected {
		t.s.Since = now
	}
	t.s.Connected = false
	if err != nil {
		t.s.LastError, t.s.LastErrorAt = err.Error(), now
	}
}

// shouldLog says whether a failure is worth a log line: a new error, or
// the same one a minute after it was last logged.
func (t *tracker) shouldLog(err error, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg == t.logged && now.Sub(t.loggedAt) < time.Minute {
		return false
	}
	t.logged, t.loggedAt = msg, now
	return true
}

func (t *tracker) caughtUp(c CatchUp) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.s.CatchUp = &c
}

func (t *tracker) sent(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.s.Sent += int64(n)
}

// measured records the backlog, the events just dropped from it, and when
// its oldest event was committed (zero: nothing waits).
func (t *tracker) measured(backlog, dropped int64, oldest, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.s.Backlog, t.s.Lag = backlog, 0
	t.s.Dropped += dropped
	if !oldest.IsZero() {
		t.s.Lag = max(now.Sub(oldest), 0)
	}
	t.s.LagSeconds = t.s.Lag.Seconds()
}

// Register adds the bridge's metrics to reg.
func (b *Bridge) Register(reg prometheus.Registerer) {
	gauge := func(name, help string, value func(Status) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return value(b.Status()) })
	}
	counter := func(name, help string, value func(Status) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return value(b.Status()) })
	}
	reg.MustRegister(
		gauge("slipway_bridge_connected", "1 while the bridge is connected to the upstream broker.", func(s Status) float64 {
			if s.Connected {
				return 1
			}
			return 0
		}),
		gauge("slipway_bridge_backlog_events", "Events waiting to be sent to the upstream broker.", func(s Status) float64 { return float64(s.Backlog) }),
		gauge("slipway_bridge_lag_seconds", "How long the oldest event waiting for the upstream broker has waited.", func(s Status) float64 { return s.Lag.Seconds() }),
		counter("slipway_bridge_sent_total", "Events the upstream broker acknowledged.", func(s Status) float64 { return float64(s.Sent) }),
		counter("slipway_bridge_dropped_total", "Events dropped unsent because the backlog passed bridge.max_backlog.", func(s Status) float64 { return float64(s.Dropped) }),
	)
}
