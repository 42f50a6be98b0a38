package storm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/slipway/slipway/testbed"
)

// ConsoleReport is what the console showed in a real browser during the
// storm: an operator's view of it.
type ConsoleReport struct {
	// EventsHandled are the live events the page's own handlers ran for,
	// PeakEventsPerSecond the most in one second; Overflows are the times
	// the server said the page had fallen behind and events were dropped.
	EventsHandled, PeakEventsPerSecond, Overflows int64
	// AllReadyShownAfter is how long after the last machine was ready the
	// overview showed them all ready (its counts reload at most once a
	// second); negative: it never did. LastReadyShown is its last count.
	AllReadyShownAfter time.Duration
	LastReadyShown     int64
	// FirstPage is navigation start → the first page of machines drawn, in
	// a fresh page load with the store full (median and slowest of five).
	FirstPage, FirstPageSlowest time.Duration
	// CPUSeconds is what Chromium (all its processes) used from the log-in
	// until the overview showed the storm's end: an operator's browser
	// does not share the box's cores, this one does.
	CPUSeconds float64
}

// consoleScript runs in the console's page before the console's own
// script: it counts the live events the console's handlers ran for, and
// notes when the first row of machines was drawn (ms from navigation start).
const consoleScript = `(() => {
  const live = window.__storm = { events: 0, overflows: 0, rowsAt: 0 };
  const Source = window.EventSource;
  window.EventSource = class extends Source {
    addEventListener(kind, fn, opts) {
      super.addEventListener(kind, (e) => { fn(e); if (kind === 'overflow') live.overflows++; else live.events++; }, opts);
    }
  };
  new MutationObserver((_, obs) => {
    if (document.querySelector('#rows tr[data-id]')) { live.rowsAt = performance.now(); obs.disconnect(); }
  }).observe(document, { childList: true, subtree: true });
})();`

// readyShownScript is the number the overview shows for ready machines.
const readyShownScript = `Number((document.querySelector('a.card[href$="state=ready"] .n') || {}).textContent || -1)`

// console is a headless Chromium logged in to the console, watching the
// overview while the storm runs.
type console struct {
	ctx    context.Context
	cancel context.CancelFunc
	base   string
	events atomic.Int64 // handled by the page so far, for the series
	mu     sync.Mutex
	shown  []readyShown
	report ConsoleReport
	done   chan struct{}
	// browser is Chromium's process (0: unknown), and cpuAtOpen the CPU
	// its processes had used once logged in.
	browser   int
	cpuAtOpen time.Duration
}

// readyShown is what the overview showed at one moment.
type readyShown struct {
	at    time.Duration // since the storm began
	ready int64
}

// openConsole starts Chromium (cfg.Browser), logs in as cfg.APIUser over
// HTTPS and opens the overview.
func (s *storm) openConsole() (*console, error) {
	if _, err := os.Stat(s.cfg.Browser); err != nil {
		return nil, fmt.Errorf("storm: browser: %w", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(s.cfg.Browser), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		// The appliance's certificate is its own, made at first start.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true), chromedp.WindowSize(1280, 900),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	c := &console{ctx: ctx, cancel: func() { cancel(); acancel() }, base: fmt.Sprintf("https://%s:%d/console/", s.cfg.Server, s.cfg.HTTPSPort), done: make(chan struct{})}
	// The first Run starts the browser, which lives as long as the context
	// of that Run: the console's, not a step's.
	err := chromedp.Run(ctx)
	if err == nil {
		err = c.run(60*time.Second, chromedp.ActionFunc(func(ctx context.Context) error {
			_, err := page.AddScriptToEvaluateOnNewDocument(consoleScript).Do(ctx)
			return err
		}))
	}
	if err == nil {
		err = c.open()
	}
	if err == nil {
		err = c.run(60*time.Second, chromedp.WaitVisible(`#login`),
			chromedp.SendKeys(`#login [name=username]`, s.cfg.APIUser), chromedp.SendKeys(`#login [name=password]`, s.cfg.APIPassword),
			chromedp.Click(`#login button[type=submit]`), chromedp.WaitVisible(`#nav`), chromedp.WaitVisible(`.cards .card`))
	}
	if err == nil {
		// The driver turns on DevTools' network recording, which copies
		// every message of the event stream from the page to the browser
		// process and on to the driver: in a storm, more of Chromium's
		// work (and the storm's) than the console's own. An operator's
		// browser records nothing; the console is measured as it runs there.
		err = c.run(10*time.Second, network.Disable())
	}
	if b := chromedp.FromContext(ctx).Browser; err == nil && b != nil && b.Process() != nil {
		c.browser = b.Process().Pid
		c.cpuAtOpen, _ = testbed.TreeCPUTime(c.browser)
	}
	if err != nil {
		c.cancel()
		return nil, fmt.Errorf("storm: console in %s: log in and open the overview: %w", s.cfg.Browser, err)
	}
	return c, nil
}

// open loads the console's first page. Chromium drops a load when the
// network changes under it (ERR_NETWORK_CHANGED): the storm's namespace
// may still be settling as the storm starts (the appliance's IPv6 router
// advertisements give it addresses), so a dropped load is tried again.
func (c *console) open() error {
	for try := 1; ; try++ {
		err := c.run(60*time.Second, chromedp.Navigate(c.base+"#/overview"))
		if err == nil || try == 3 || !strings.Contains(err.Error(), "ERR_NETWORK_CHANGED") {
			return err
		}
		time.Sleep(time.Second)
	}
}

// run runs actions in the page, within limit.
func (c *console) run(limit time.Duration, actions ...chromedp.Action) error {
	ctx, cancel := context.WithTimeout(c.ctx, limit)
	defer cancel()
	return chromedp.Run(ctx, actions...)
}

// watch reads the page's counters four times a second until ctx ends.
func (c *console) watch(ctx context.Context, began time.Time) {
	defer close(c.done)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c.look(began)
	}
}

// look reads the page's counters once.
func (c *console) look(began time.Time) {
	var got struct{ Events, Overflows, Ready int64 }
	if err := c.run(5*time.Second, chromedp.Evaluate(`({Events: __storm.events, Overflows: __storm.overflows, Ready: `+readyShownScript+`})`, &got)); err != nil {
		return // a page busy past 5 s: the next look will tell
	}
	c.events.Store(got.Events)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.report.EventsHandled, c.report.Overflows = got.Events, got.Overflows
	c.shown = append(c.shown, readyShown{time.Since(began), got.Ready})
}

// lastShown is the overview's last ready count read.
func (c *console) lastShown() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.shown) == 0 {
		return -1
	}
	return c.shown[len(c.shown)-1].ready
}

// finish measures the first page of machines with the store full, closes
// the browser and reports; lastReady is when the last machine was ready
// (since the storm began), ready how many were.
func (c *console) finish(began time.Time, lastReady time.Duration, ready int64, series []sample) (*ConsoleReport, error) {
	<-c.done
	defer c.cancel()
	// The overview reloads a second after the last event: give it that
	// (and a busy page more) to show the storm's end.
	for deadline := time.Now().Add(10 * time.Second); c.lastShown() < ready && time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		c.look(began)
	}
	if c.browser != 0 {
		if cpu, err := testbed.TreeCPUTime(c.browser); err == nil {
			c.report.CPUSeconds = (cpu - c.cpuAtOpen).Seconds()
		}
	}
	c.report.LastReadyShown, c.report.AllReadyShownAfter = c.lastShown(), -1
	for _, x := range c.shown {
		if x.ready >= ready {
			c.report.AllReadyShownAfter = max(0, x.at-lastReady)
			break
		}
	}
	for _, rate := range perSecond(series, func(x sample) int64 { return x.Browser }) {
		c.report.PeakEventsPerSecond = max(c.report.PeakEventsPerSecond, int64(rate))
	}
	var loads []time.Duration
	for range 5 {
		var ms float64
		// From a blank page, so that each is a whole load of the console.
		err := c.run(60*time.Second, chromedp.Navigate("about:blank"), chromedp.Navigate(c.base+"#/machines"), chromedp.WaitVisible(`#rows tr[data-id]`),
			chromedp.Evaluate(`__storm.rowsAt`, &ms))
		if err != nil {
			return nil, fmt.Errorf("storm: console: first page of machines: %w", err)
		}
		if ms <= 0 {
			return nil, errors.New("storm: console: the page drew machines but did not note when")
		}
		loads = append(loads, time.Duration(ms*float64(time.Millisecond)))
	}
	slices.Sort(loads)
	c.report.FirstPage, c.report.FirstPageSlowest = loads[len(loads)/2], loads[len(loads)-1]
	return &c.report, nil
}
