//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway/slipway/appliance/tlscert"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
	"github.com/slipway/slipway/wiring"
)

// chromium is Debian's; the tests never download a browser.
const chromium = "/usr/bin/chromium"

// screenshots go here, one per page the test visits (git-ignored).
var screenshotDir = filepath.Join("..", "..", "artifacts", "console")

// The console in a real browser against `slipway demo`: log in, see the
// machines, watch a simulated machine become ready without reloading,
// provision one through its BMC and watch it go round again, and see a
// viewer refused the operator's action.
func TestConsoleInChromium(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		missingPeer(t, "Debian's chromium is missing: apt-get install chromium (make e2e-deps installs it)")
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	upstream := testkit.StartMosquitto(t)
	demo := startDemo(t, 9, "--bridge-url", upstream.URL(), "--bridge-site", "console")
	base, spki := demo.base, demo.spki

	ctx, cancel := browser(t, spki)
	defer cancel()
	shot := func(name string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			var png []byte // quality 100 makes a PNG
			if err := chromedp.FullScreenshot(&png, 100).Do(ctx); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644)
		})
	}
	login(t, ctx, base, "admin", "slipway-demo")
	racksView(t, ctx, shot)
	run(t, ctx, "overview", chromedp.Navigate(base+"/console/#/overview"), chromedp.WaitVisible(`.cards .card`), shot("overview"))
	// Each chart drawn with data: machines per state over the hour, the
	// times to ready of the demo's machines, BMCs and the DHCP pool.
	var areas, bars, shares int
	var readyWords string
	run(t, ctx, "charts", chromedp.WaitVisible(`#charts .area.ready`), chromedp.WaitVisible(`#charts .bar`),
		chromedp.Evaluate(`document.querySelectorAll('#charts .area').length`, &areas),
		chromedp.Evaluate(`document.querySelectorAll('#charts .bar').length`, &bars),
		chromedp.Evaluate(`document.querySelectorAll('#charts .share').length`, &shares),
		chromedp.Text(`#charts .chart:nth-child(3) figcaption`, &readyWords))
	if areas == 0 || bars == 0 || shares < 3 || !strings.Contains(readyWords, "half within") {
		t.Errorf("charts: %d state areas, %d time-to-ready bars, %d shares; %q", areas, bars, shares, readyWords)
	}
	// States in words with NICo's name beside; times relative, exact on hover.
	var readyCard, recentTime, exact string
	run(t, ctx, "words", chromedp.WaitVisible(`#recent time[title]`), chromedp.Text(`a.card[href$="state=ready"] .k`, &readyCard),
		chromedp.Text(`#recent time[title]`, &recentTime), chromedp.AttributeValue(`#recent time[title]`, "title", &exact, nil))
	if readyCard != "Ready ready" || !strings.Contains(recentTime, "ago") && recentTime != "just now" || exact == "" {
		t.Errorf("the overview's words: card %q, a recent time %q (exactly %q)", readyCard, recentTime, exact)
	}
	// The uplink says it is up, and down once its broker stops, in words.
	var uplink string
	run(t, ctx, "uplink up", chromedp.WaitVisible(`#bridge .ok`), chromedp.Text(`#bridge`, &uplink))
	if !strings.Contains(uplink, "up") || !strings.Contains(uplink, "site console: "+upstream.URL()) {
		t.Errorf("the overview's uplink card: %q", uplink)
	}
	upstream.Stop()
	run(t, ctx, "uplink down", chromedp.WaitVisible(`#bridge .error`), chromedp.Text(`#bridge`, &uplink), shot("overview-uplink-down"))
	if !strings.Contains(uplink, "down") || strings.Count(uplink, upstream.URL()) < 2 { // the uplink, and the error naming it
		t.Errorf("the overview's uplink card once its broker stopped: %q", uplink)
	}
	upstream.Restart()

	// The list, then a machine becoming ready in it while the page stays.
	var notReady string
	run(t, ctx, "machines", chromedp.Navigate(base+"/console/#/machines"), chromedp.WaitVisible(`#rows tr[data-id]`),
		chromedp.Evaluate(`window.stayed = true`, nil),
		chromedp.Evaluate(`[...document.querySelectorAll('#rows tr[data-id]')].find(tr => !tr.querySelector('.state .badge.ready'))?.dataset.id || ''`, &notReady),
		shot("machines"))
	if notReady == "" {
		t.Fatal("every machine was ready before the page could watch one")
	}
	run(t, ctx, "live update", chromedp.WaitVisible(fmt.Sprintf(`tr[data-id=%q] .state .badge.ready`, notReady)))
	var stayed bool
	run(t, ctx, "no reload", chromedp.Evaluate(`window.stayed === true`, &stayed))
	if !stayed {
		t.Error("the page reloaded to show the change")
	}

	// Provision one through its BMC: it goes round the lifecycle again.
	machine := "sim-r01-t00"
	var dialogs atomic.Int64
	var refuseDialogs atomic.Bool
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			dialogs.Add(1)
			go chromedp.Run(ctx, page.HandleJavaScriptDialog(!refuseDialogs.Load())) // confirm "Reinstall …?"
		}
	})
	run(t, ctx, "machine page", chromedp.Navigate(base+"/console/#/machines/"+machine),
		chromedp.WaitVisible(`#st .badge.ready`), chromedp.WaitEnabled(`#provision`), shot("machine"))
	run(t, ctx, "provision", chromedp.Click(`#provision`), chromedp.WaitVisible(`#toast`),
		chromedp.WaitVisible(`#st .badge.hostinit`), shot("provisioning"))
	run(t, ctx, "ready again", chromedp.WaitVisible(`#st .badge.ready`), shot("provisioned"))
	// Every heartbeat of the reinstall updated the page live; the list is
	// drawn once per MAC all the same.
	var lists int
	run(t, ctx, "heartbeats listed once", chromedp.WaitVisible(`#onb-stages li`), chromedp.Evaluate(`document.querySelectorAll('#onb-stages ol').length`, &lists))
	if lists != 1 {
		t.Errorf("the machine's heartbeats are listed %d times", lists)
	}
	// Every action that interrupts the machine asks first; refused,
	// nothing is sent (no toast says it was).
	refuseDialogs.Store(true)
	var before int64
	for _, action := range []string{`[data-power=off]`, `[data-power=restart]`, `[data-power=shutdown]`, `#provision`, `#reset-hb`} {
		before = dialogs.Load()
		run(t, ctx, action+" asks", chromedp.Evaluate(`document.querySelector('#toast').hidden = true`, nil), chromedp.Click(action))
		testkit.WaitFor(t, "the confirmation of "+action, func() bool { return dialogs.Load() > before })
		var toastShown bool
		run(t, ctx, action+" refused", chromedp.Sleep(300), chromedp.Evaluate(`!document.querySelector('#toast').hidden`, &toastShown))
		if toastShown {
			t.Errorf("%s was refused in its confirmation and still acted", action)
		}
	}
	refuseDialogs.Store(false)
	var timeline string
	run(t, ctx, "timeline", chromedp.Text(`#hist`, &timeline))
	if !strings.Contains(timeline, "provisioned through BMC") {
		t.Errorf("the timeline does not show the provisioning:\n%s", timeline)
	}
	// A machine whose install failed says why, above its heartbeats. It
	// netbooted first (a heartbeat alone makes no machine).
	failed := "02:53:57:00:99:01"
	if code, body := testkit.Request(t, "GET", base+"/boot.ipxe?mac="+failed, "", "", ""); code != 200 {
		t.Fatalf("the failed machine's iPXE script: %d %s", code, body)
	}
	if code, body := testkit.Request(t, "POST", base+"/heartbeat", "", "", `{"mac":"`+failed+`","stage":"install","phase":"failed","detail":"disk sda missing"}`); code != 200 {
		t.Fatalf("failed heartbeat: %d %s", code, body)
	}
	var callout, stagesShown string
	// Its cause at the top of its page, above the actions.
	var onTop bool
	run(t, ctx, "failed machine", chromedp.Navigate(base+"/console/#/machines/mac-025357009901"), chromedp.WaitVisible(`#cause .callout`),
		chromedp.WaitVisible(`#onb-stages li`), chromedp.Text(`#cause`, &callout), chromedp.Text(`#onb-stages`, &stagesShown),
		chromedp.Evaluate(`document.querySelector('#cause').compareDocumentPosition(document.querySelector('#actions')) === Node.DOCUMENT_POSITION_FOLLOWING`, &onTop),
		shot("machine-failed"))
	if !onTop {
		t.Error("the failure's cause is not above the machine's actions")
	}
	if !strings.Contains(callout, "disk sda missing") || strings.Contains(stagesShown, "No heartbeat yet") || !strings.Contains(stagesShown, "install/failed") {
		t.Errorf("failed machine: callout %q, heartbeats %q", callout, stagesShown)
	}
	// A firmware update from the machine's page (it asks first), its task
	// followed live.
	uploadFirmware(t, base, "BMC", "2.0.0")
	before = dialogs.Load()
	run(t, ctx, "firmware update", chromedp.Navigate(base+"/console/#/bmcs"), chromedp.Navigate(base+"/console/#/machines/"+machine),
		chromedp.WaitVisible(`#update`), chromedp.Click(`#update`), chromedp.WaitVisible(`#tasks progress`),
		chromedp.WaitVisible(`#tasks .badge.succeeded`), shot("firmware"))
	if dialogs.Load() == before {
		t.Error("the firmware update did not ask first")
	}
	var inventory string
	run(t, ctx, "new version shown", chromedp.WaitVisible(`//dd[contains(., "2.0.0")]`, chromedp.BySearch), chromedp.Text(`#inv`, &inventory))
	if !strings.Contains(inventory, "2.0.0") {
		t.Errorf("the inventory does not show the new BMC firmware:\n%s", inventory)
	}
	// A Drydock deployment of one machine: its page shows its boot actions
	// as the node reports them, and the task list names the Drydock tasks.
	deployed := testbed.Fleet(6)[2]
	deployByDrydock(t, base, deployed.ID, deployed.MACs[0])
	spare := designOnlyNode(t, base)
	run(t, ctx, "boot actions", chromedp.Navigate(base+"/console/#/tasks"), chromedp.Navigate(base+"/console/#/machines/"+deployed.ID),
		chromedp.WaitVisible(`#bootactions .badge.success`), chromedp.WaitVisible(`#builddata details`), shot("machine-bootactions"))
	var taskList string
	run(t, ctx, "Drydock tasks", chromedp.Navigate(base+"/console/#/tasks"), chromedp.WaitVisible(`#list table`), chromedp.Text(`#list`, &taskList))
	if !strings.Contains(taskList, "Drydock deploy_nodes") {
		t.Errorf("the task list does not name the Drydock task:\n%s", taskList)
	}
	// The designs page: the deployed design valid with its node linked; a
	// broken one uploaded from a file shows each problem where it is.
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	os.WriteFile(broken, []byte("---\nschema: drydock/BaremetalNode/v1\nmetadata: {name: lonely, schema: metadata/Document/v1}\ndata: {host_profile: nowhere}\n"), 0o644)
	var designs string
	run(t, ctx, "designs", chromedp.Navigate(base+"/console/#/designs"), chromedp.WaitVisible(`.design a[href="#/machines/`+deployed.ID+`"]`),
		chromedp.SendKeys(`#upload [name=name]`, "broken"), chromedp.SetUploadFiles(`#upload [name=file]`, []string{broken}),
		chromedp.Click(`#upload button[type=submit]`), chromedp.WaitVisible(`.design .badge.bad`), chromedp.Text(`#designs`, &designs), shot("designs"))
	if !strings.Contains(designs, "slipway:console valid") || !strings.Contains(designs, "slipway:broken has errors") || !strings.Contains(designs, "nowhere") {
		t.Errorf("the designs page:\n%s", designs)
	}
	// A NICo firmware batch over the demo rack: the tasks page draws it
	// tray by tray, live, until every tray is done.
	nicoBatch(t, base)
	// The racks view sums the batch up while it runs and outlines its trays.
	var batchLine string
	var outlined int
	// The deployed node's slot and words: the configuration gave it tray 2
	// of rack r01, and the design, which names its rack but no tray, kept it.
	var designed, spareSlot []string
	run(t, ctx, "firmware batch on the racks", chromedp.Navigate(base+"/console/#/"), chromedp.WaitVisible(`#rack-batches .batch-line`),
		chromedp.Text(`#rack-batches`, &batchLine), chromedp.Evaluate(`document.querySelectorAll('#racks .tray.in-batch').length`, &outlined),
		chromedp.Evaluate(slotText(deployed.ID), &designed), chromedp.Evaluate(slotText(spare), &spareSlot),
		shot("racks-batch"))
	if !strings.Contains(batchLine, "Firmware batch") || outlined != 8 {
		t.Errorf("the racks view during a batch: %q, %d trays outlined", batchLine, outlined)
	}
	if len(designed) != 2 || designed[0] != "2" || !strings.Contains(designed[1], "tray 2") {
		t.Errorf("the design's node %s on the racks: %q, want the configuration's slot 2 kept", deployed.ID, designed)
	}
	if len(spareSlot) != 2 || spareSlot[0] != "" || !strings.Contains(spareSlot[1], "no tray given") {
		t.Errorf("the node only a design lists on the racks: %q, want no slot and \"no tray given\"", spareSlot)
	}
	run(t, ctx, "firmware batch", chromedp.Navigate(base+"/console/#/tasks"), chromedp.WaitVisible(`#batches .batch`),
		chromedp.WaitNotPresent(`#batches .batch .badge.waiting`), chromedp.WaitNotPresent(`#batches .batch .badge.updating`),
		shot("tasks-batch"))
	var batch string
	run(t, ctx, "batch text", chromedp.Text(`#batches .batch`, &batch))
	if strings.Count(batch, "sim-r01-") != 8 || !strings.Contains(batch, "8 done") {
		t.Errorf("the batch panel:\n%s", batch)
	}
	// A BMC registered from the BMCs page with its credentials, then
	// removed (it asks first).
	before = dialogs.Load()
	run(t, ctx, "register a BMC", chromedp.Navigate(base+"/console/#/bmcs"), chromedp.WaitVisible(`#rows tr`),
		chromedp.Click(`#register-panel summary`), chromedp.SendKeys(`#register [name=endpoint]`, "https://127.0.0.1:9"),
		chromedp.SendKeys(`#register [name=username]`, "root"), chromedp.SendKeys(`#register [name=password]`, "calvin"),
		chromedp.Click(`#register button[type=submit]`), chromedp.WaitVisible(`#rows button[data-remove]`), shot("bmcs-registered"),
		chromedp.Click(`#rows button[data-remove]`), chromedp.WaitNotPresent(`#rows button[data-remove]`))
	if dialogs.Load() == before {
		t.Error("removing a BMC did not ask first")
	}
	run(t, ctx, "other pages", chromedp.Navigate(base+"/console/#/bmcs"), chromedp.WaitVisible(`#rows tr`), shot("bmcs"),
		chromedp.Navigate(base+"/console/#/tasks"), chromedp.WaitVisible(`#list`), shot("tasks"),
		chromedp.Navigate(base+"/console/#/users"), chromedp.WaitVisible(`#rows tr`), shot("users"),
		chromedp.Navigate(base+"/console/#/leases"), chromedp.WaitVisible(`#rows tr`), shot("leases"),
		chromedp.Navigate(base+"/console/#/settings"), chromedp.WaitNotPresent(`//pre[text()="Loading…"]`, chromedp.BySearch), shot("settings"))
	var settings string
	run(t, ctx, "settings text", chromedp.Text(`#yaml`, &settings))
	if !strings.Contains(settings, "(redacted)") || strings.Contains(settings, "$2a$") {
		t.Errorf("settings show a password hash, or nothing redacted:\n%s", settings)
	}
	// The run-time policy as a form: unknown machines told to boot their
	// disk from now on, in force at once (the API says so), then back to
	// the file's (it asks first).
	var source, inForce string
	before = dialogs.Load()
	run(t, ctx, "policy form", chromedp.WaitVisible(`#policy [name=unknown_machines][value=install]:checked`),
		chromedp.Click(`#policy [name=unknown_machines][value=local]`), chromedp.Click(`#policy button[type=submit]`),
		chromedp.WaitVisible(`#policy-reset:not([disabled])`), chromedp.Text(`#policy-source`, &source), shot("settings-changed"),
		chromedp.Evaluate(`fetch('/api/v1/settings/policy').then(r => r.json()).then(j => j.policy.unknown_machines + ' ' + j.policy.source)`, &inForce, awaitPromise))
	if !strings.Contains(source, "Changed here by admin") || inForce != "local changed" {
		t.Errorf("after applying local: %q, the API says %q", source, inForce)
	}
	run(t, ctx, "policy reset", chromedp.Click(`#policy-reset`), chromedp.WaitVisible(`#policy [name=unknown_machines][value=install]:checked`),
		chromedp.WaitVisible(`#policy-reset[disabled]`))
	if dialogs.Load() == before {
		t.Error("going back to the file's policy did not ask first")
	}
	var releases string
	run(t, ctx, "releases", chromedp.Navigate(base+"/console/#/releases"), chromedp.WaitVisible(`#deploy h2`), chromedp.Text(`main`, &releases), shot("releases"))
	if !strings.Contains(releases, "No deploy in progress") || !strings.Contains(releases, "No release yet") {
		t.Errorf("the releases page of a box without releases:\n%s", releases)
	}
	// A tablet, in the dark, by keyboard: the machines list still reads.
	var focused string
	run(t, ctx, "tablet, dark", chromedp.EmulateViewport(768, 1024), chromedp.Navigate(base+"/console/#/machines"),
		chromedp.WaitVisible(`#rows tr[data-id]`), chromedp.Click(`#theme`), chromedp.Focus(`#filters [name=q]`),
		chromedp.SendKeys(`#filters [name=q]`, "t01"), chromedp.WaitNotPresent(`tr[data-id="sim-r01-t00"]`),
		chromedp.WaitVisible(`tr[data-id="sim-r01-t01"]`),
		chromedp.Evaluate(`document.activeElement.name`, &focused), shot("machines-tablet-dark"))
	if focused != "q" {
		t.Errorf("the search field lost focus while typing (focus on %q)", focused)
	}

	everyPageEverywhere(t, ctx, base)

	var violations []string
	run(t, ctx, "CSP", chromedp.Evaluate(`window.cspViolations`, &violations))
	if len(violations) > 0 {
		t.Errorf("the Content-Security-Policy refused: %v", violations)
	}

	// A viewer sees the actions disabled, and the API refuses them anyway.
	addUser(t, base, "vic", "viewer", "vic-password-1")
	vctx, vcancel := browser(t, spki)
	defer vcancel()
	login(t, vctx, base, "vic", "vic-password-1")
	var disabled bool
	var refused string
	run(t, vctx, "viewer", chromedp.Navigate(base+"/console/#/machines/"+machine), chromedp.WaitVisible(`#provision`),
		chromedp.Evaluate(`document.querySelector('#provision').disabled`, &disabled),
		chromedp.Evaluate(`fetch('/api/v1/machines/`+machine+`/provision', {method: 'POST', credentials: 'same-origin',
			headers: {'X-CSRF-Token': document.cookie.split('; ').find(c => c.startsWith('slipway_csrf=')).slice(13)}})
			.then(r => r.status + ' ' + r.statusText)`, &refused, awaitPromise),
		shot("viewer"))
	if !disabled || !strings.HasPrefix(refused, "403") {
		t.Errorf("viewer: provision button disabled %v, API answered %q", disabled, refused)
	}
}

// demoRun is a running `slipway demo`.
type demoRun struct {
	base, spki string // plain HTTP, and the TLS certificate's key hash
	mqttPort   int
	pid        int
}

// startDemo runs `slipway demo` with n simulated machines on free ports
// and returns its plain HTTP base URL once it is ready (the console there
// sends a browser over to TLS), and its certificate's public key hash for
// Chromium to trust, once it checked that the banner printed that
// certificate's fingerprint.
func startDemo(t *testing.T, n int, flags ...string) demoRun {
	t.Helper()
	tcp, udp := testkit.FreePorts(t, "tcp", 5), testkit.FreePorts(t, "udp", 2)
	httpPort, httpsPort, mqttPort := tcp[0], tcp[1], tcp[2]
	cmd := exec.Command(slipwayBinary, append([]string{"demo", "--machines", strconv.Itoa(n), "--stage-delay", "600ms", "--boot-interval", "1500ms",
		"--http-port", strconv.Itoa(httpPort), "--mqtt-port", strconv.Itoa(mqttPort),
		"--mqtt-ws-port", strconv.Itoa(tcp[3]), "--tftp-port", strconv.Itoa(udp[0]),
		"--dhcp-port", strconv.Itoa(udp[1]), "--usm-port", strconv.Itoa(tcp[4]),
		"--https-port", strconv.Itoa(httpsPort)}, flags...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("demo output:\n%s", out.String())
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return demoRun{base: base, spki: demoCertificate(t, httpsPort, out.String), mqttPort: mqttPort, pid: cmd.Process.Pid}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo is not ready:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// demoCertificate reads the certificate the demo serves over TLS, checks
// the banner printed its fingerprint, and returns the base64 SHA-256 of
// its public key: what Chromium's --ignore-certificate-errors-spki-list
// trusts, that key alone.
func demoCertificate(t *testing.T, port int, banner func() string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{InsecureSkipVerify: true}) // read, then checked below
	if err != nil {
		t.Fatalf("the demo's console over TLS: %v", err)
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	fp := tlscert.Fingerprint(leaf.Raw)
	testkit.WaitFor(t, "the banner", func() bool { return strings.Contains(banner(), "certificate SHA-256") })
	if !strings.Contains(banner(), "certificate SHA-256 "+fp) {
		t.Fatalf("the banner does not print the served certificate's fingerprint %s:\n%s", fp, banner())
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// browser starts headless Chromium as the issue prescribes, trusting the
// demo's self-signed certificate by its public key.
func browser(t *testing.T, spki string) (context.Context, context.CancelFunc) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 900),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// The first Run starts the browser, which lives as long as its context:
	// this one, not a step's.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx, func() { cancel(); acancel() }
}

func login(t *testing.T, ctx context.Context, base, user, password string) {
	t.Helper()
	run(t, ctx, "login "+user, chromedp.Navigate(base+"/console/"), chromedp.WaitVisible(`#login`),
		chromedp.SendKeys(`#login [name=username]`, user), chromedp.SendKeys(`#login [name=password]`, password),
		chromedp.Click(`#login button[type=submit]`), chromedp.WaitVisible(`#nav`))
}

// awaitPromise has chromedp wait for the expression's promise.
func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }

// run runs actions, within 30 s; on failure it shows what the page showed.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	step, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(step, actions...); err != nil {
		var url, shown string
		look, lcancel := context.WithTimeout(ctx, 5*time.Second)
		defer lcancel()
		_ = chromedp.Run(look, chromedp.Location(&url), chromedp.Evaluate(`document.body.innerText`, &shown))
		t.Fatalf("%s: %v\nat %s the page showed:\n%s", what, err, url, shown)
	}
}

// uploadFirmware puts an image the emulated BMCs accept into the library.
func uploadFirmware(t *testing.T, base, component, version string) {
	t.Helper()
	body := "FIRMWARE " + component + " " + version + "\n" + strings.Repeat("bits", 1024)
	sum := sha256.Sum256([]byte(body))
	url := fmt.Sprintf("%s/api/v1/firmware?component=%s&version=%s&sha256=%x", base, component, version, sum)
	if code, answer := testkit.Request(t, "POST", url, "admin", "slipway-demo", body); code != http.StatusCreated {
		t.Fatalf("upload firmware: %d %s", code, answer)
	}
}

// deployByDrydock deploys one demo machine through Drydock's API from a
// design uploaded to the box, and plays the node's part of its boot
// actions (the demo's simulated nodes onboard but run none): it reads its
// key and manifest from the cloud-init user-data served for its MAC.
func deployByDrydock(t *testing.T, base, node, mac string) {
	t.Helper()
	design := `---
schema: drydock/BaremetalNode/v1
metadata: {name: ` + node + `}
data:
  oob: {type: manual}
  metadata: {boot_mac: '` + mac + `', rack: r01}
---
schema: drydock/BootAction/v1
metadata: {name: motd}
data:
  assets:
    - {path: /etc/motd, type: file, permissions: '644', data: "deployed by Slipway for {{ node.hostname }}", data_pipeline: [template]}
`
	drydockTask(t, base, "console", design, "deploy_nodes")
	var userData string
	testkit.WaitFor(t, "the node's boot actions in its cloud-init", func() bool {
		_, userData = testkit.Request(t, http.MethodGet, base+"/cloud-init/user-data?mac="+mac, "", "", "")
		return strings.Contains(userData, "bootactions.json")
	})
	ran, err := testbed.RunBootActions(context.Background(), userData)
	if err != nil || ran.Files["/etc/motd"] != "deployed by Slipway for "+node || len(ran.Succeeded) != 1 {
		t.Fatalf("boot actions: %+v %v", ran, err)
	}
}

// slotText is a script reading a tray's slot number and its words for
// screen readers on the racks view.
func slotText(id string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#racks .tray[data-id=%q] .slot, #racks .tray[data-id=%q] .sr')].map(e => e.textContent)`, id, id)
}

// drydockTask uploads design as the box's design name and starts a
// Drydock task of action on it, as Drydock's client would.
func drydockTask(t *testing.T, base, name, design, action string) {
	t.Helper()
	if code, body := testkit.Request(t, http.MethodPut, base+"/api/v1/designs/"+name, "admin", "slipway-demo", design); code != 200 {
		t.Fatalf("upload design %s: %d %s", name, code, body)
	}
	code, body := testkit.Request(t, http.MethodPost, base+"/api/v1/login", "", "", `{"username":"admin","password":"slipway-demo"}`)
	var login struct{ Token string }
	if err := json.Unmarshal([]byte(body), &login); code != http.StatusOK || err != nil {
		t.Fatalf("login: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1.0/tasks", strings.NewReader(`{"action":"`+action+`","design_ref":"slipway:`+name+`"}`))
	req.Header.Set("X-Auth-Token", login.Token)
	req.Header.Set("Content-Type", "application/json")
	if code, body = testkit.Do(t, req); code != http.StatusCreated {
		t.Fatalf("%s: %d %s", action, code, body)
	}
}

// designOnlyNode lists a node that only a design knows (prepare_site):
// it has a rack and no tray.
func designOnlyNode(t *testing.T, base string) (id string) {
	t.Helper()
	const design = `---
schema: drydock/BaremetalNode/v1
metadata: {name: spare}
data:
  oob: {type: manual}
  metadata: {boot_mac: '52:54:00:99:00:01', rack: r99}
`
	drydockTask(t, base, "spare", design, "prepare_site")
	testkit.WaitFor(t, "the design's node in the inventory", func() bool {
		code, _ := testkit.Request(t, http.MethodGet, base+"/api/v1/machines/spare", "admin", "slipway-demo", "")
		return code == http.StatusOK
	})
	return "spare"
}

// nicoBatch updates the BMC firmware of the demo's whole rack r01 with one
// NICo PATCH, as a NICo operator would.
func nicoBatch(t *testing.T, base string) {
	t.Helper()
	uploadFirmware(t, base, "BMC", "3.0.0")
	code, body := testkit.Request(t, http.MethodPost, base+"/api/v1/login", "", "", `{"username":"admin","password":"slipway-demo"}`)
	var login struct{ Token string }
	if err := json.Unmarshal([]byte(body), &login); code != http.StatusOK || err != nil {
		t.Fatalf("login: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodPatch, base+"/v2/org/demo/nico/rack/firmware", strings.NewReader(
		`{"siteId":"`+wiring.DemoSiteID+`","filter":{"rackId":"r01"},"targets":["bmc"],"version":"3.0.0","overrideReadinessCheck":true}`))
	req.Header.Set("Authorization", "Bearer "+login.Token)
	req.Header.Set("Content-Type", "application/json")
	if code, body = testkit.Do(t, req); code != http.StatusOK || !strings.Contains(body, "taskIds") {
		t.Fatalf("NICo rack firmware: %d %s", code, body)
	}
}

func addUser(t *testing.T, base, name, role, password string) {
	t.Helper()
	body := fmt.Sprintf(`{"name":%q,"role":%q,"password":%q}`, name, role, password)
	if code, answer := testkit.Request(t, "POST", base+"/api/v1/users", "admin", "slipway-demo", body); code != http.StatusCreated {
		t.Fatalf("add user %s: %d %s", name, code, answer)
	}
}

// racksView checks the landing page: the demo's racks drawn tray by tray
// in slot order, every tray's state in words for a screen reader and a
// glyph beside its colour, the tooltip on keyboard focus, the state
// filter, and a machine turning ready in place while the page stays.
func racksView(t *testing.T, ctx context.Context, shot func(string) chromedp.Action) {
	t.Helper()
	var slots []string
	var label, glyph, tip string
	first := `.rack .tray[data-id="sim-r01-t00"]`
	run(t, ctx, "racks", chromedp.WaitVisible(first),
		chromedp.Evaluate(`[...document.querySelector('.rack').querySelectorAll('.tray .slot')].map(s => s.textContent)`, &slots),
		chromedp.Evaluate(`document.querySelector('`+first+`').textContent`, &label), chromedp.Text(first+` .g`, &glyph),
		chromedp.Focus(first), chromedp.WaitVisible(`#tip`), chromedp.Text(`#tip`, &tip), shot("racks"))
	if strings.Join(slots, ",") != "0,1,2,3,4,5,6,7" {
		t.Errorf("the first rack's trays, in the order drawn: %v", slots)
	}
	if !strings.Contains(label, "tray 0") || !strings.Contains(label, "BMC") || !strings.Contains(label, "(") || glyph == "" {
		t.Errorf("a tray says %q with glyph %q", label, glyph)
	}
	if !strings.Contains(tip, "heartbeat") || !strings.Contains(tip, "tray 0") {
		t.Errorf("the tooltip on focus: %q", tip)
	}
	// By keyboard: one tab stop a rack, the arrows within and across.
	var below, across string
	run(t, ctx, "racks by keyboard", chromedp.Focus(first), chromedp.KeyEvent(kb.ArrowDown),
		chromedp.Evaluate(`document.activeElement.dataset.id`, &below), chromedp.KeyEvent(kb.ArrowRight),
		chromedp.Evaluate(`document.activeElement.dataset.id`, &across))
	if below != "sim-r01-t01" || across != "sim-r02-t00" {
		t.Errorf("down from the first tray: %q, then right: %q", below, across)
	}
	var notReady string
	run(t, ctx, "racks live", chromedp.Evaluate(`window.stayed = true`, nil),
		chromedp.Evaluate(`[...document.querySelectorAll('#racks .tray')].find(el => !el.classList.contains('ready'))?.dataset.id || ''`, &notReady))
	if notReady != "" {
		var stayed bool
		run(t, ctx, "racks live update", chromedp.WaitVisible(fmt.Sprintf(`#racks .tray.ready[data-id=%q]`, notReady)),
			chromedp.Evaluate(`window.stayed === true`, &stayed))
		if !stayed {
			t.Error("the racks view reloaded the page to show a change")
		}
	}
	// Filtered by state (the legend's links), then found by name as typed.
	var shown, notReadyShown int
	run(t, ctx, "racks filter", chromedp.Click(`#legend a.chip.ready`), chromedp.WaitVisible(`#racks .tray`),
		chromedp.Evaluate(`document.querySelectorAll('#racks .tray').length`, &shown),
		chromedp.Evaluate(`document.querySelectorAll('#racks .tray:not(.ready)').length`, &notReadyShown))
	if shown == 0 || notReadyShown != 0 {
		t.Errorf("filtered by ready: %d trays shown, %d of them not ready", shown, notReadyShown)
	}
	var found []string
	run(t, ctx, "racks search", chromedp.SetValue(`#rf select[name=state]`, ""), chromedp.SendKeys(`#rf input[name=q]`, "r02-t00"),
		chromedp.WaitNotPresent(`#racks .tray[data-id="sim-r01-t00"]`),
		chromedp.Evaluate(`[...document.querySelectorAll('#racks .tray')].map(el => el.dataset.id)`, &found))
	if strings.Join(found, ",") != "sim-r02-t00" {
		t.Errorf("searching r02-t00 shows %v", found)
	}
}

// consolePages are every page of the console, as an admin sees them.
var consolePages = []struct{ name, hash string }{
	{"racks", "#/"}, {"overview", "#/overview"}, {"machines", "#/machines"}, {"machine", "#/machines/sim-r01-t00"},
	{"bmcs", "#/bmcs"}, {"tasks", "#/tasks"}, {"designs", "#/designs"}, {"releases", "#/releases"}, {"leases", "#/leases"},
	{"settings", "#/settings"}, {"users", "#/users"},
}

// everyPageEverywhere visits every page on a desktop and on a phone
// (390 px wide), light and dark, saving each screenshot: on the phone no
// page scrolls sideways, and the menu button reaches the pages.
func everyPageEverywhere(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	// The console's own origin (HTTPS: base is the plain port, which
	// sends the browser there), so that a page changes by its fragment
	// within one document, as a click does.
	run(t, ctx, "origin", chromedp.Navigate(base+"/console/#/"), chromedp.WaitVisible(`#logout`), chromedp.Evaluate(`location.origin`, &base))
	for _, screen := range []struct {
		name          string
		width, height int64
		mobile        bool
	}{{"desktop", 1280, 900, false}, {"phone", 390, 844, true}} {
		for _, theme := range []string{"light", "dark"} {
			viewport := chromedp.EmulateViewport(screen.width, screen.height)
			if screen.mobile {
				viewport = chromedp.EmulateViewport(screen.width, screen.height, chromedp.EmulateMobile, chromedp.EmulateScale(2))
			}
			// Pages are changed by their address's fragment, as a click
			// does, within one document: every fresh load would open one
			// more event stream.
			run(t, ctx, screen.name+" "+theme, viewport,
				chromedp.Evaluate(`document.documentElement.dataset.theme = '`+theme+`'; localStorage.setItem('slipway-theme', '`+theme+`')`, nil))
			for _, p := range consolePages {
				var wide bool
				var png []byte
				run(t, ctx, p.name+" on a "+screen.name+" in "+theme, chromedp.Navigate(base+"/console/"+p.hash),
					chromedp.WaitVisible(`#logout`, chromedp.ByQuery), chromedp.Poll(`![...document.querySelectorAll('main *')].some(el => el.childElementCount === 0 && el.textContent.trim().startsWith('Loading'))`, nil),
					// Every cell named by its column (the phone's cards).
					chromedp.Poll(`!document.querySelector('main tbody tr > td:first-child:not([data-label]):not([colspan])')`, nil),
					chromedp.Sleep(300), // the live parts settle
					chromedp.Evaluate(`document.documentElement.scrollWidth > document.documentElement.clientWidth`, &wide))
				run(t, ctx, "screenshot of "+p.name+" on a "+screen.name+" in "+theme, chromedp.FullScreenshot(&png, 100))
				if err := os.WriteFile(filepath.Join(screenshotDir, fmt.Sprintf("%s-%s-%s.png", p.name, screen.name, theme)), png, 0o644); err != nil {
					t.Fatal(err)
				}
				if wide && screen.mobile {
					t.Errorf("%s scrolls sideways on a %d px phone (%s)", p.name, screen.width, theme)
				}
				for _, f := range accessibilityFindings(t, ctx) {
					t.Errorf("%s on a %s in %s: %s", p.name, screen.name, theme, f)
				}
			}
		}
	}
	var at string
	run(t, ctx, "the phone's menu", chromedp.Navigate(base+"/console/#/"), chromedp.WaitVisible(`#menu`), chromedp.Click(`#menu`),
		chromedp.WaitVisible(`#nav a[href="#/leases"]`), chromedp.Click(`#nav a[href="#/leases"]`), chromedp.WaitNotVisible(`#nav`),
		chromedp.Evaluate(`location.hash`, &at))
	if at != "#/leases" {
		t.Errorf("the phone's menu went to %q", at)
	}
	run(t, ctx, "back to a desktop", chromedp.EmulateViewport(1280, 900),
		chromedp.Evaluate(`delete document.documentElement.dataset.theme; localStorage.removeItem('slipway-theme')`, nil))
}

// axeSource is Deque's axe-core, the accessibility engine browsers' own
// audits are built on (testdata/axe-core).
var axeSource = sync.OnceValues(func() ([]byte, error) { return os.ReadFile(filepath.Join("testdata", "axe-core", "axe.min.js")) })

// accessibilityFindings runs axe-core on the page as it stands (injected
// through the debugger, which the page's Content-Security-Policy does not
// govern) and returns its serious and critical findings, each with the
// rule, what it checks and where.
func accessibilityFindings(t *testing.T, ctx context.Context) []string {
	t.Helper()
	src, err := axeSource()
	if err != nil {
		t.Fatalf("axe-core: %v", err)
	}
	var loaded bool
	run(t, ctx, "axe-core loaded", chromedp.Evaluate(`typeof axe === 'object'`, &loaded))
	if !loaded {
		run(t, ctx, "load axe-core", chromedp.Evaluate(string(src), nil))
	}
	var findings []string
	run(t, ctx, "axe-core", chromedp.Evaluate(`axe.run(document, {resultTypes: ['violations']}).then(r => r.violations
		.filter(v => v.impact === 'serious' || v.impact === 'critical')
		.map(v => v.impact + ' ' + v.id + ': ' + v.help + ' at ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')))`,
		&findings, awaitPromise))
	return findings
}
