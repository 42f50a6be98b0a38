//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

// racksScript runs in the console's page before its own script: it
// counts the live events the page's handlers ran for.
const racksScript = `(() => {
  const live = window.__racks = { events: 0, overflows: 0 };
  const Source = window.EventSource;
  window.EventSource = class extends Source {
    addEventListener(kind, fn, opts) {
      super.addEventListener(kind, (e) => { fn(e); if (kind === 'overflow') live.overflows++; else live.events++; }, opts);
    }
  };
})();`

// TestBenchRacks measures the racks view in headless Chromium with a site
// of SLIPWAY_BENCH_RACKS racks (default 250) of 40 trays: the time from
// navigation to every rack drawn, in fresh page loads, and then, with the
// page open, every machine onboarding at once through heartbeats (each
// moving its lifecycle): how many live events a second the page handled,
// whether it fell behind, and how long after the last heartbeat it showed
// every tray ready. There is no peer: the figures are the console's own.
//
// SLIPWAY_BENCH=1 only (make bench-racks).
func TestBenchRacks(t *testing.T) {
	benchOnly(t, "bench-racks")
	if _, err := os.Stat(chromium); err != nil {
		missingPeer(t, "Debian's chromium is missing: apt-get install chromium (make e2e-deps installs it)")
	}
	racks, perRack := envInt("SLIPWAY_BENCH_RACKS", 250), 40
	hash, err := bcrypt.GenerateFromPassword([]byte("bench-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	var site strings.Builder
	var macs []string
	for r := 1; r <= racks; r++ {
		for tray := 1; tray <= perRack; tray++ {
			i := len(macs)
			macs = append(macs, testbed.FleetMAC(i))
			fmt.Fprintf(&site, "  - {id: m-r%03d-t%02d, macs: [%q], hostname: n%05d, rack: {id: row%d-r%03d, name: Rack %d, tray: %d, tray_type: compute}}\n",
				r, tray, macs[i], i, (r-1)/25+1, r, r, tray)
		}
	}
	tcp := testkit.FreePorts(t, "tcp", 2)
	a := startServe(t, testbed.Host{}, fmt.Sprintf(`
lan: {interface: lo, address: 127.0.0.1/8}
data_dir: DATA_DIR
log: {level: warn}
# The bench's heartbeats come from one address.
http: {port: %d, max_connections_per_address: 4096}
https: {port: 0}
tftp: {root: TFTP_ROOT, port: %d}
mqtt: {port: %d, websocket_port: 0}
dhcp: {mode: "off"}
netboot: {router_advertisements: false}
users:
  - {name: bench, role: admin, password_hash: %q}
machines:
%s`, tcp[0], testkit.FreePort(t, "udp"), tcp[1], string(hash), site.String()))
	a.url = fmt.Sprintf("http://127.0.0.1:%d", tcp[0])
	waitReady(t, a)

	ctx, cancel := browser(t, "")
	defer cancel()
	run(t, ctx, "inject", chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(racksScript).Do(ctx)
		return err
	}))
	login(t, ctx, a.url, "bench", "bench-password")
	// An operator's browser does not record its network as the driver's
	// DevTools does (a copy of every message of the event stream).
	run(t, ctx, "network recording off", network.Disable())
	var firstPaint []float64
	var trays int
	for range 5 {
		var at float64
		run(t, ctx, "racks drawn", chromedp.Navigate("about:blank"), chromedp.Navigate(a.url+"/console/#/"), chromedp.WaitReady(`#racks`),
			chromedp.Poll(`window.racksDrawnAt`, &at, chromedp.WithPollingTimeout(30*time.Second)),
			chromedp.Evaluate(`document.querySelectorAll('#racks .tray').length`, &trays))
		firstPaint = append(firstPaint, at)
	}
	if trays != racks*perRack {
		t.Fatalf("the racks view drew %d trays of %d", trays, racks*perRack)
	}
	shot := func(name string) {
		t.Helper()
		var png []byte
		run(t, ctx, "screenshot", chromedp.FullScreenshot(&png, 100))
		if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shot("racks-250-new")
	// Every machine onboards at once, with the page open.
	start := time.Now()
	done := make(chan int64)
	go func() { done <- onboardAll(t, a.url, macs, 200) }()
	time.Sleep(8 * time.Second)
	shot("racks-250-booting") // part way: every state at once
	sent := <-done
	lastAck := time.Since(start)
	var readyShown int
	allShown := -1.0
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		run(t, ctx, "ready shown", chromedp.Evaluate(`document.querySelectorAll('#racks .tray.ready').length`, &readyShown))
		if readyShown == racks*perRack {
			allShown = (time.Since(start) - lastAck).Seconds()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	shot("racks-250-ready")
	var live struct {
		Events    int64 `json:"events"`
		Overflows int64 `json:"overflows"`
	}
	var updates int64
	run(t, ctx, "counts", chromedp.Evaluate(`window.__racks`, &live), chromedp.Evaluate(`window.racksUpdates || 0`, &updates))
	// The answer as the page reads it, and as it came over the wire
	// (compressed when the browser accepts it).
	var size [2]int
	run(t, ctx, "answer size", chromedp.Evaluate(`fetch('/api/v1/racks?size', {cache: 'no-store'}).then(r => r.text()).then(s => {
		const e = performance.getEntriesByName(new URL('/api/v1/racks?size', location.href).href).pop();
		return [s.length, e ? e.encodedBodySize : -1];
	})`, &size, awaitPromise))
	slices.Sort(firstPaint)
	t.Logf("\n| measure | value |\n|---|---|\n"+
		"| machines, racks | %d in %d racks of %d |\n"+
		"| navigation → every rack drawn, median of 5 (fastest–slowest) | %.0f ms (%.0f–%.0f) |\n"+
		"| /api/v1/racks answer | %d KiB, %d KiB on the wire |\n"+
		"| heartbeats sent (every machine through every stage), 200 clients | %d in %.1f s |\n"+
		"| live events handled by the page | %d (%.0f a second), %d overflows, %d frames drawn |\n"+
		"| every tray shown ready after the last heartbeat was acknowledged | %s |\n",
		racks*perRack, racks, perRack, firstPaint[2], firstPaint[0], firstPaint[4], size[0]/1024, size[1]/1024,
		sent, lastAck.Seconds(), live.Events, float64(live.Events)/lastAck.Seconds(), live.Overflows, updates,
		shownAfter(allShown, readyShown, racks*perRack))
	if allShown < 0 {
		t.Errorf("the racks view showed %d of %d trays ready two minutes after the last heartbeat", readyShown, racks*perRack)
	}
}

func shownAfter(s float64, shown, want int) string {
	if s < 0 {
		return fmt.Sprintf("never (%d of %d)", shown, want)
	}
	return fmt.Sprintf("%.1f s", s)
}

// onboardAll sends every stage's heartbeats for each MAC from clients
// goroutines, and says how many were acknowledged.
func onboardAll(t *testing.T, server string, macs []string, clients int) int64 {
	t.Helper()
	var acked atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			web := testbed.Web{Client: &http.Client{Timeout: time.Minute}}
			for i := next.Add(1) - 1; i < int64(len(macs)); i = next.Add(1) - 1 {
				for _, stage := range domain.Stages {
					for _, phase := range []domain.Phase{domain.PhaseStarted, domain.PhaseDone} {
						if err := web.Heartbeat(context.Background(), server, macs[i], string(stage), string(phase), ""); err != nil {
							t.Errorf("heartbeat %s %s/%s: %v", macs[i], stage, phase, err)
							return
						}
						acked.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	return acked.Load()
}
