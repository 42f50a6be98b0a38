package firmware

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/broker/nicoschema"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/bmcemu"
	"github.com/slipway/slipway/testbed/testkit"
)

type taskRecorder struct{}

func (taskRecorder) TaskMessage(t task.Task) outbox.Message {
	b, _ := json.Marshal(t)
	return outbox.Message{Topic: "test/task/" + t.ID, Payload: b, QoS: 1}
}

// world is one machine with an emulated BMC, and Slipway's side: store,
// inventory, BMC manager, image library and HTTP for images.
type world struct {
	dir     string
	db      *store.Store
	commit  *store.Committer
	inv     *domain.Inventory
	bmcs    *bmc.Manager
	lib     *Library
	images  string // base URL of the image server
	emu     *bmcemu.Emulator
	updates atomic.Int64 // SimpleUpdate requests the BMC received
	machine string
	stopBMC func()
}

func newWorld(t *testing.T, emu bmcemu.Config) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{dir: t.TempDir()}
	w.db, w.commit = testkit.OpenStore(t)
	var err error
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if w.inv, err = domain.NewInventory(ctx, domain.InventoryConfig{DB: w.db, Commit: w.commit, Log: quiet}); err != nil {
		t.Fatal(err)
	}
	if w.lib, err = NewLibrary(filepath.Join(w.dir, "firmware"), w.db, w.commit); err != nil {
		t.Fatal(err)
	}
	imageSrv := httptest.NewServer(http.StripPrefix("/firmware/", http.FileServer(http.Dir(w.lib.Dir()))))
	t.Cleanup(imageSrv.Close)
	w.images = imageSrv.URL + "/firmware/"

	sealer, err := bmc.OpenSealer(filepath.Join(w.dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	if w.bmcs, err = bmc.NewManager(ctx, bmc.Config{DB: w.db, Commit: w.commit, Sealer: sealer, Machines: w.inv, Log: quiet,
		Poll: bmc.PollConfig{Interval: 50 * time.Millisecond, Timeout: time.Second, MaxBackoff: 200 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.bmcs.Run(runCtx); close(done) }()
	w.stopBMC = func() { cancel(); <-done }
	t.Cleanup(w.stopBMC)
	w.emu, w.machine = w.addBMC(t, emu, "52:54:00:fa:00:01", &w.updates)
	return w
}

// addBMC starts an emulated BMC whose host has mac, registers it, and
// returns it with the machine it was linked to; updates counts the
// SimpleUpdate requests it receives.
func (w *world) addBMC(t *testing.T, emu bmcemu.Config, mac string, updates *atomic.Int64) (*bmcemu.Emulator, string) {
	t.Helper()
	emu.PowerDelay, emu.UpdateDuration = 20*time.Millisecond, 200*time.Millisecond
	emu.HostMACs = []string{mac}
	e, err := bmcemu.New(emu)
	if err != nil {
		t.Fatal(err)
	}
	bmcSrv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "UpdateService.SimpleUpdate") {
			updates.Add(1)
		}
		e.ServeHTTP(rw, r)
	}))
	t.Cleanup(func() { bmcSrv.Close(); e.Close() })
	st, err := w.bmcs.Register(context.Background(), bmc.Registration{Endpoint: bmcSrv.URL, Username: "admin", Password: "admin", Source: "api"})
	if err != nil {
		t.Fatal(err)
	}
	machine := ""
	waitFor(t, "the BMC linked to its host", func() bool { s, _ := w.bmcs.Status(st.ID); machine = s.MachineID; return machine != "" })
	return e, machine
}

// ready onboards the machine, as a netboot would.
func (w *world) ready(t *testing.T) {
	t.Helper()
	for _, ev := range []domain.Event{{Kind: domain.EventDHCPLease}, domain.HeartbeatEvent(domain.StageComplete, domain.PhaseDone, "")} {
		if _, err := w.inv.Apply(context.Background(), w.machine, ev); err != nil {
			t.Fatal(err)
		}
	}
}

// updater is an Updater with a task engine of its own, as a fresh start
// of Slipway has.
func (w *world) updater(poll time.Duration) *Updater {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine := task.NewEngine(task.EngineConfig{DB: w.db, Commit: w.commit, Announce: taskRecorder{}, Log: quiet})
	return NewUpdater(Config{Tasks: engine, Reader: task.Reader{DB: w.db}, Images: w.lib, BMCs: w.bmcs, Machines: w.inv,
		ImageURL: func(id string) string { return w.images + FileName(id) }, PollEvery: poll, VerifyFor: 5 * time.Second, Log: quiet})
}

func run(t *testing.T, u *Updater) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = u.cfg.Tasks.Run(ctx); close(done) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	<-u.cfg.Tasks.Started()
	return stop
}

func (w *world) image(t *testing.T, component, version string) Image {
	t.Helper()
	body := []byte("FIRMWARE " + component + " " + version + "\n" + strings.Repeat("\x00\x01", 4096))
	sum := sha256.Sum256(body)
	im, err := w.lib.Add(context.Background(), Upload{Component: component, Version: version, SHA256: hex.EncodeToString(sum[:]), Filename: "fw.bin"}, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func waitFor(t *testing.T, what string, cond func() bool) { t.Helper(); testkit.WaitFor(t, what, cond) }

func (w *world) finished(t *testing.T, id string) store.Task {
	t.Helper()
	var task store.Task
	waitFor(t, "the task to finish", func() bool {
		task, _ = w.db.Task(context.Background(), id)
		return task.Status == "succeeded" || task.Status == "failed"
	})
	return task
}

// steps are the substates the task's bus messages went through, each
// checked against NICo's BmcFirmwareUpgradeSubstate.
func (w *world) steps(t *testing.T, id string) []string {
	t.Helper()
	evs, err := w.db.EventsAfter(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if e.Topic != "test/task/"+id {
			continue
		}
		var task struct {
			Step   string
			Result result
		}
		if json.Unmarshal(e.Payload, &task) != nil {
			t.Fatalf("task message %s", e.Payload)
		}
		if err := nicoschema.ValidateDef("BmcFirmwareUpgradeSubstate", task.Result.Substate); err != nil {
			t.Errorf("substate %s: %v", task.Result.Substate, err)
		}
		if len(out) == 0 || out[len(out)-1] != task.Step {
			out = append(out, task.Step)
		}
	}
	return out
}

// labels are the machine's lifecycle states, oldest first.
func (w *world) labels(t *testing.T) []string {
	t.Helper()
	hist, err := w.db.Transitions(context.Background(), w.machine)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range hist {
		st, _ := domain.ParseState(h.StateJSON)
		out = append(out, st.Label())
	}
	return out
}

func TestUpdates(t *testing.T) {
	tests := []struct {
		name      string
		emu       bmcemu.Config
		component string
		version   string
		status    string
		steps     string
		lifecycle string // the end of the machine's history
		message   string
	}{
		{"BMC", bmcemu.Config{}, "BMC", "2.0.0", "succeeded", "checkfwversion waitforupdatecompletion fwupdatecompleted",
			"hostreprovision/checkingfirmware hostreprovision/waitingforfirmwareupgrade ready", "BMC updated 1.45.455b66-rev4 → 2.0.0"},
		{"BIOS needs a host power cycle", bmcemu.Config{}, "BIOS", "P80", "succeeded",
			"checkfwversion waitforupdatecompletion hostpowercycle fwupdatecompleted",
			"hostreprovision/waitingforfirmwareupgrade hostreprovision/resetfornewfirmware hostreprovision/newfirmwarereportedwait ready", "BIOS updated P79 v1.45 → P80"},
		{"BMC that must restart", bmcemu.Config{BMCUpdateNeedsReset: true}, "BMC", "2.1.0", "succeeded",
			"checkfwversion waitforupdatecompletion reboot fwupdatecompleted",
			"hostreprovision/resetfornewfirmware hostreprovision/newfirmwarereportedwait ready", "BMC updated 1.45.455b66-rev4 → 2.1.0"},
		{"already there", bmcemu.Config{}, "BMC", "1.45.455b66-rev4", "succeeded", "checkfwversion fwupdatecompleted",
			"hostreprovision/checkingfirmware ready", "nothing to do"},
		{"flash fails", bmcemu.Config{}, "BMC", "2.0.0", "failed", "checkfwversion waitforupdatecompletion failed",
			"hostreprovision/waitingforfirmwareupgrade hostreprovision/failedfirmwareupgrade", "flash write error"},
		{"a 204 with the task's Location", bmcemu.Config{UpdateReply: "no-content"}, "BMC", "2.0.0", "succeeded",
			"checkfwversion waitforupdatecompletion fwupdatecompleted", "hostreprovision/waitingforfirmwareupgrade ready", "BMC updated 1.45.455b66-rev4 → 2.0.0"},
		{"updated before the answer", bmcemu.Config{UpdateReply: "synchronous"}, "BMC", "2.0.0", "succeeded",
			"checkfwversion fwupdatecompleted", "hostreprovision/checkingfirmware ready", "BMC updated 1.45.455b66-rev4 → 2.0.0"},
		{"BIOS staged before the answer", bmcemu.Config{UpdateReply: "synchronous"}, "BIOS", "P80", "succeeded",
			"checkfwversion hostpowercycle fwupdatecompleted", "hostreprovision/newfirmwarereportedwait ready", "BIOS updated P79 v1.45 → P80"},
		// The other BMC profiles change nothing of an update.
		{"BMC without a session service (basic auth)", bmcemu.Config{NoSessionLink: true}, "BMC", "2.0.0", "succeeded",
			"checkfwversion waitforupdatecompletion fwupdatecompleted", "hostreprovision/waitingforfirmwareupgrade ready", "BMC updated 1.45.455b66-rev4 → 2.0.0"},
		{"BIOS where Once is kept as Continuous", bmcemu.Config{OnceAsContinuous: true}, "BIOS", "P80", "succeeded",
			"checkfwversion waitforupdatecompletion hostpowercycle fwupdatecompleted", "hostreprovision/newfirmwarereportedwait ready", "BIOS updated P79 v1.45 → P80"},
		{"BIOS on a chassis of two systems", bmcemu.Config{Systems: 2}, "BIOS", "P80", "succeeded",
			"checkfwversion waitforupdatecompletion hostpowercycle fwupdatecompleted", "hostreprovision/newfirmwarereportedwait ready", "BIOS updated P79 v1.45 → P80"},
		{"no such component", bmcemu.Config{}, "CPLD", "3", "failed", "checkfwversion failed",
			"hostreprovision/checkingfirmware hostreprovision/failedfirmwareupgrade", `no firmware component "CPLD" (it has BIOS, BMC, SS)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.emu)
			if strings.Contains(tt.name, "fails") {
				w.emu.SetFaults(bmcemu.Faults{FailUpdate: "flash write error"})
			}
			w.ready(t)
			u := w.updater(20 * time.Millisecond)
			run(t, u)
			started, err := u.Start(context.Background(), w.machine, w.image(t, tt.component, tt.version).ID)
			if err != nil {
				t.Fatal(err)
			}
			task := w.finished(t, started.ID)
			if task.Status != tt.status || !strings.Contains(task.Message, tt.message) {
				t.Errorf("task %s: %q", task.Status, task.Message)
			}
			if got := strings.Join(w.steps(t, task.ID), " "); got != tt.steps {
				t.Errorf("steps %s\nwant  %s", got, tt.steps)
			}
			if got := strings.Join(w.labels(t), " "); !strings.HasSuffix(got, tt.lifecycle) {
				t.Errorf("lifecycle %s\nwant it to end with %s", got, tt.lifecycle)
			}
			if tt.status == "succeeded" && w.emu.FirmwareVersion(tt.component) != tt.version {
				t.Errorf("the BMC reports %s %s", tt.component, w.emu.FirmwareVersion(tt.component))
			}
		})
	}
}

// An update interrupted by a stop of Slipway resumes from its stored step:
// it follows the BMC's task it had started rather than starting another.
func TestUpdateResumesAfterARestart(t *testing.T) {
	w := newWorld(t, bmcemu.Config{})
	w.emu.SetFaults(bmcemu.Faults{})
	first := w.updater(20 * time.Millisecond)
	stop := run(t, first)
	task, err := first.Start(context.Background(), w.machine, w.image(t, "BMC", "2.0.0").ID)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the BMC flashing", func() bool {
		tk, _ := w.db.Task(context.Background(), task.ID)
		return tk.Step == stepWait
	})
	stop()
	if tk, _ := w.db.Task(context.Background(), task.ID); tk.Status != "running" {
		t.Fatalf("after the stop: %s", tk.Status)
	}
	run(t, w.updater(20*time.Millisecond))
	if tk := w.finished(t, task.ID); tk.Status != "succeeded" {
		t.Fatalf("after resuming: %s %q", tk.Status, tk.Message)
	}
	if n := w.updates.Load(); n != 1 {
		t.Errorf("%d SimpleUpdate requests, want 1", n)
	}
}

func TestStartRefusals(t *testing.T) {
	w := newWorld(t, bmcemu.Config{UpdateDuration: time.Hour})
	u := w.updater(time.Hour)
	im := w.image(t, "BMC", "2.0.0")
	if _, err := u.Start(context.Background(), w.machine, strings.Repeat("0", 64)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown image: %v", err)
	}
	if _, err := u.Start(context.Background(), "no-bmc", im.ID); !errors.Is(err, bmc.ErrUnknownBMC) {
		t.Errorf("machine without BMC: %v", err)
	}
	w.ready(t)
	if _, err := w.inv.Apply(context.Background(), w.machine, domain.Event{Kind: domain.EventAssign}); err != nil {
		t.Fatal(err)
	}
	var illegal *domain.IllegalTransitionError
	if _, err := u.Start(context.Background(), w.machine, im.ID); !errors.As(err, &illegal) {
		t.Errorf("assigned machine: %v", err)
	}
	if _, err := w.inv.Apply(context.Background(), w.machine, domain.Event{Kind: domain.EventRelease}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.inv.Apply(context.Background(), w.machine, domain.Event{Kind: domain.EventCleaned}); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Start(context.Background(), w.machine, im.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Start(context.Background(), w.machine, im.ID); !errors.Is(err, task.ErrBusy) {
		t.Errorf("second update of one machine: %v", err)
	}
}

func TestLibraryKeepsOnlyVerifiedImages(t *testing.T) {
	db, commit := testkit.OpenStore(t)
	lib, err := NewLibrary(filepath.Join(t.TempDir(), "fw"), db, commit)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("FIRMWARE BMC 2\n")
	sum := sha256.Sum256(body)
	good := Upload{Component: "BMC", Version: "2", SHA256: hex.EncodeToString(sum[:])}
	tests := []struct {
		name string
		up   Upload
		want string
	}{
		{"wrong checksum", Upload{Component: "BMC", Version: "2", SHA256: strings.Repeat("a", 64)}, "nothing was kept"},
		{"no checksum", Upload{Component: "BMC", Version: "2"}, "sha256"},
		{"no version", Upload{Component: "BMC", SHA256: good.SHA256}, "version"},
		{"bad component", Upload{Component: "../etc", Version: "2", SHA256: good.SHA256}, "component"},
	}
	for _, tt := range tests {
		if _, err := lib.Add(context.Background(), tt.up, bytes.NewReader(body)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	for range 2 { // the same image twice is one image
		im, err := lib.Add(context.Background(), good, bytes.NewReader(body))
		if err != nil || im.ID != good.SHA256 || im.Size != int64(len(body)) {
			t.Fatalf("%+v %v", im, err)
		}
	}
	entries, _ := os.ReadDir(lib.Dir())
	if len(entries) != 1 || entries[0].Name() != FileName(good.SHA256) {
		t.Errorf("firmware directory holds %v", entries)
	}
	if list, _ := lib.Images(context.Background()); len(list) != 1 {
		t.Errorf("%d images listed", len(list))
	}
}

// Slipway died after the BMC accepted the update but before it recorded
// the BMC's task: the resume finds that task instead of flashing twice.
func TestResumeFindsTheUpdateTheBMCWasGiven(t *testing.T) {
	w := newWorld(t, bmcemu.Config{})
	w.ready(t)
	im := w.image(t, "BMC", "2.0.0")
	b, err := w.bmcs.ForMachine(w.machine)
	if err != nil {
		t.Fatal(err)
	}
	p := params{MachineID: w.machine, BMCID: b.ID, ImageID: im.ID, Component: "BMC", Version: "2.0.0",
		FirmwareType: "bmc", ImageURI: w.images + FileName(im.ID), WasReady: true}
	pj, _ := json.Marshal(p)
	rj, _ := json.Marshal(result{SubmittedAt: time.Now().UTC().Truncate(time.Second), PreviousVersion: "1.45.455b66-rev4"})
	task := store.Task{ID: "t-crashed", Kind: TaskKind, MachineID: w.machine, Status: "running", Step: stepCheck, Params: string(pj), Result: string(rj)}
	if err := w.commit.Do(context.Background(), func(tx *store.Tx) error { return tx.PutTask(task) }); err != nil {
		t.Fatal(err)
	}
	// What Slipway had sent before it died.
	if code, body := testkit.Request(t, "POST", b.Endpoint+"/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
		"admin", "admin", `{"ImageURI":"`+p.ImageURI+`"}`); code != 202 {
		t.Fatalf("SimpleUpdate: %d %s", code, body)
	}
	run(t, w.updater(20*time.Millisecond))
	if tk := w.finished(t, task.ID); tk.Status != "succeeded" {
		t.Fatalf("resumed: %s %q", tk.Status, tk.Message)
	}
	if n := w.updates.Load(); n != 1 {
		t.Errorf("%d SimpleUpdate requests, want the one from before the crash", n)
	}
	if got := strings.Join(w.steps(t, task.ID), " "); !strings.HasPrefix(got, "waitforupdatecompletion") {
		t.Errorf("steps %s: want it to follow the BMC's task", got)
	}
}

// An operator cancels an update while the BMC flashes: the task stops
// following it, is stored cancelled with who asked, and the machine waits
// in failedfirmwareupgrade for someone to look; the machine is free for
// another update.
func TestCancelAnUpdate(t *testing.T) {
	w := newWorld(t, bmcemu.Config{})
	w.ready(t)
	u := w.updater(20 * time.Millisecond)
	run(t, u)
	started, err := u.Start(context.Background(), w.machine, w.image(t, "BMC", "2.0.0").ID)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the BMC flashing", func() bool {
		tk, _ := w.db.Task(context.Background(), started.ID)
		return tk.Step == stepWait
	})
	if _, err := u.cfg.Tasks.Cancel(context.Background(), started.ID, "otto"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the task cancelled", func() bool {
		tk, _ := w.db.Task(context.Background(), started.ID)
		return tk.Status == task.Cancelled
	})
	labels := w.labels(t)
	if last := labels[len(labels)-1]; last != "hostreprovision/failedfirmwareupgrade" {
		t.Fatalf("machine after the cancel: %v", labels)
	}
	if tk, _ := w.db.Task(context.Background(), started.ID); !strings.Contains(tk.Message, "otto") || !strings.Contains(tk.Result, "cancelled at waitforupdatecompletion") {
		t.Fatalf("cancelled task: %q %s", tk.Message, tk.Result)
	}
	if _, err := u.Start(context.Background(), w.machine, w.image(t, "BMC", "2.0.1").ID); err != nil {
		t.Fatalf("another update after the cancel: %v", err)
	}
}

// A batch's admission: lower groups end first, then at most limit run.
func TestAdmit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		group   int
		limit   int
		members []member
		ok      bool
	}{
		{"alone", 2, 1, []member{{ID: "me", Group: 2}}, true},
		{"a power shelf still updating", 2, 4, []member{{ID: "ps", Group: 0, Admitted: true}, {ID: "me", Group: 2}}, false},
		{"a switch not started yet", 2, 4, []member{{ID: "sw", Group: 1}, {ID: "me", Group: 2}}, false},
		{"lower groups done", 2, 4, []member{{ID: "ps", Group: 0, Admitted: true, Finished: true}, {ID: "me", Group: 2}}, true},
		{"the limit reached", 2, 2, []member{{ID: "a", Group: 2, Admitted: true}, {ID: "b", Group: 2, Admitted: true}, {ID: "me", Group: 2}}, false},
		{"a turn free", 2, 2, []member{{ID: "a", Group: 2, Admitted: true, Finished: true}, {ID: "b", Group: 2, Admitted: true}, {ID: "me", Group: 2}}, true},
		{"no limit", 2, 0, []member{{ID: "a", Group: 2, Admitted: true}, {ID: "b", Group: 2, Admitted: true}, {ID: "me", Group: 2}}, true},
		{"a higher group does not hold it", 0, 1, []member{{ID: "c", Group: 2}, {ID: "me", Group: 0}}, true},
	} {
		if ok, why := admit("me", tc.group, tc.limit, tc.members); ok != tc.ok || (!ok && why == "") {
			t.Errorf("%s: admit = %v (%q), want %v", tc.name, ok, why, tc.ok)
		}
	}
}
