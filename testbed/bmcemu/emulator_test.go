package bmcemu

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"

	"github.com/slipway/slipway/testbed/testkit"
)

func start(t *testing.T, cfg Config) *Running {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Serve(e, "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func connect(t *testing.T, url string, basic bool) *gofish.APIClient {
	t.Helper()
	c, err := gofish.Connect(gofish.ClientConfig{Endpoint: url, Username: "admin", Password: "admin", BasicAuth: basic})
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	return c
}

// Every system of every embedded mockup reads through gofish without
// error, with its NICs and the firmware inventory.
func TestGofishReadsEveryMockupSystem(t *testing.T) {
	for _, name := range MockupNames() {
		t.Run(name, func(t *testing.T) {
			m, err := LoadMockup(name)
			if err != nil {
				t.Fatal(err)
			}
			c := connect(t, start(t, Config{Mockup: m}).URL, false)
			systems, err := c.Service.Systems()
			if err != nil || len(systems) == 0 {
				t.Fatalf("systems: %v (%d)", err, len(systems))
			}
			for _, s := range systems {
				nics, err := s.EthernetInterfaces()
				if err != nil {
					t.Fatalf("%s NICs: %v", s.ODataID, err)
				}
				if s.PowerState == "" || s.SerialNumber == "" || len(nics) == 0 {
					t.Errorf("%s: power %q serial %q, %d NICs", s.ODataID, s.PowerState, s.SerialNumber, len(nics))
				}
				for _, read := range []func() error{
					func() error { _, err := s.Processors(); return err },
					func() error { _, err := s.Memory(); return err },
					func() error { _, err := s.ManagedBy(); return err },
					func() error { _, err := s.Bios(); return err },
				} {
					if err := read(); err != nil {
						t.Errorf("%s: %v", s.ODataID, err)
					}
				}
			}
			us, err := c.Service.UpdateService()
			if err != nil {
				t.Fatal(err)
			}
			fw, err := us.FirmwareInventory()
			if err != nil || len(fw) == 0 {
				t.Fatalf("firmware inventory: %v (%d)", err, len(fw))
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	r := start(t, Config{Username: "root", Password: "calvin"})
	tests := []struct {
		name  string
		user  string
		pass  string
		basic bool
		ok    bool
	}{
		{"session", "root", "calvin", false, true},
		{"basic", "root", "calvin", true, true},
		{"wrong password session", "root", "nope", false, false},
		{"wrong password basic", "root", "nope", true, false},
		{"wrong user", "admin", "calvin", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := gofish.Connect(gofish.ClientConfig{Endpoint: r.URL, Username: tt.user, Password: tt.pass, BasicAuth: tt.basic})
			if err == nil {
				_, err = c.Service.Systems()
			}
			if tt.ok != (err == nil) {
				t.Fatalf("ok = %v, err = %v", tt.ok, err)
			}
			// gofish folds a collection's errors into one message.
			if !tt.ok && !strings.Contains(err.Error(), "401") {
				t.Errorf("want a 401 Redfish error, got %v", err)
			}
		})
	}
	// No credentials: the service root is public, the rest is not.
	for path, want := range map[string]int{"/redfish/v1/": 200, "/redfish/v1/Systems": 401} {
		resp, err := http.Get(r.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without credentials: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func firstSystem(t *testing.T, c *gofish.APIClient) *schemas.ComputerSystem {
	t.Helper()
	systems, err := c.Service.Systems()
	if err != nil || len(systems) == 0 {
		t.Fatalf("systems: %v", err)
	}
	return systems[0]
}

func waitFor(t *testing.T, what string, cond func() bool) { t.Helper(); testkit.WaitFor(t, what, cond) }

// A one-time PXE override is honoured by the next power-on, reported to
// OnBoot with the personalised MACs, and then cleared.
func TestOneTimeBootAndReset(t *testing.T) {
	boots := make(chan BootEvent, 4)
	r := start(t, Config{PowerDelay: 20 * time.Millisecond, HostMACs: []string{"52:54:00:00:00:01"},
		OnBoot: func(ev BootEvent) { boots <- ev }})
	c := connect(t, r.URL, false)
	sys := firstSystem(t, c)
	if err := sys.SetBoot(&schemas.Boot{BootSourceOverrideEnabled: schemas.OnceBootSourceOverrideEnabled,
		BootSourceOverrideTarget: schemas.PxeBootSource, BootSourceOverrideMode: schemas.UEFIBootSourceOverrideMode}); err != nil {
		t.Fatal(err)
	}
	if en, tg := r.BootOverride(sys.ODataID); en != "Once" || tg != "Pxe" {
		t.Fatalf("override after PATCH: %s %s", en, tg)
	}
	if _, err := sys.Reset(schemas.ForceRestartResetType); err != nil {
		t.Fatal(err)
	}
	ev := <-boots
	if ev.Source != "Pxe" || ev.Mode != "UEFI" || len(ev.MACs) == 0 || ev.MACs[0] != "52:54:00:00:00:01" {
		t.Errorf("boot event %+v", ev)
	}
	if en, tg := r.BootOverride(sys.ODataID); en != "Disabled" || tg != "None" {
		t.Errorf("override after boot: %s %s, want it cleared", en, tg)
	}
	if _, err := sys.Reset(schemas.ForceOffResetType); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "power off", func() bool { return r.PowerState(sys.ODataID) == "Off" })
	if _, err := sys.Reset(schemas.OnResetType); err != nil {
		t.Fatal(err)
	}
	if ev := <-boots; ev.Source != "" {
		t.Errorf("second boot used override %q; Once must clear", ev.Source)
	}
}

func TestRefusals(t *testing.T) {
	r := start(t, Config{RequireIfMatch: true})
	sys := r.Mockup().Systems()[0]
	tests := []struct {
		name, method, path, body, ifMatch string
		status                            int
		messageID                         string
	}{
		{"unknown reset type", "POST", sys + resetActionPath, `{"ResetType":"Explode"}`, "", 400, "ActionParameterValueNotInList"},
		{"no reset type", "POST", sys + resetActionPath, `{}`, "", 400, "ActionParameterMissing"},
		{"patch without If-Match", "PATCH", sys, `{"Boot":{"BootSourceOverrideEnabled":"Once"}}`, "", 428, "PreconditionRequired"},
		{"patch with stale If-Match", "PATCH", sys, `{"Boot":{"BootSourceOverrideEnabled":"Once"}}`, `"999"`, 412, "PreconditionFailed"},
		{"boot target not allowed", "PATCH", sys, `{"Boot":{"BootSourceOverrideTarget":"UefiHttp"}}`, "*", 400, "PropertyValueNotInList"},
		{"read-only property", "PATCH", sys, `{"Boot":{"BootOrder":[]}}`, "*", 400, "PropertyNotWritable"},
		{"update without image", "POST", simpleUpdateURI, `{}`, "", 400, "ActionParameterMissing"},
		{"malformed JSON", "POST", sys + resetActionPath, `{`, "", 400, "MalformedJSON"},
		{"missing resource", "GET", "/redfish/v1/Nope", ``, "", 404, "ResourceMissingAtURI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			req.SetBasicAuth("admin", "admin")
			if tt.ifMatch != "" {
				req.Header.Set("If-Match", tt.ifMatch)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			var body struct {
				Error struct {
					Code string
					Info []struct{ MessageID string } `json:"@Message.ExtendedInfo"`
				}
			}
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != tt.status || !strings.HasSuffix(body.Error.Code, tt.messageID) || len(body.Error.Info) != 1 {
				t.Errorf("%d %s, want %d %s", w.Code, w.Body, tt.status, tt.messageID)
			}
		})
	}
	// With the current ETag the PATCH goes through.
	req := httptest.NewRequest("GET", sys, nil)
	req.SetBasicAuth("admin", "admin")
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	req = httptest.NewRequest("PATCH", sys, strings.NewReader(`{"Boot":{"BootSourceOverrideEnabled":"Once"}}`))
	req.SetBasicAuth("admin", "admin")
	req.Header.Set("If-Match", w.Header().Get("ETag"))
	w = httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusNoContent {
		t.Errorf("PATCH with the current ETag: %d %s", w.Code, w.Body)
	}
}

// imageServer serves firmware images by path, as Slipway's HTTP would.
func imageServer(t *testing.T, images map[string]string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := images[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s.URL
}

func TestSimpleUpdate(t *testing.T) {
	images := imageServer(t, map[string]string{
		"/bmc.bin":  "FIRMWARE BMC 2.0.0\n" + strings.Repeat("x", 4096),
		"/bios.bin": "FIRMWARE BIOS P80\n" + strings.Repeat("y", 4096),
		"/junk.bin": "not firmware",
	})
	tests := []struct {
		name, image, fail, component string
		target                       []string
		state, version, message      string
	}{
		{"BMC applies at completion", "/bmc.bin", "", "BMC", nil, "Completed", "2.0.0", "BMC updated to 2.0.0"},
		{"not firmware", "/junk.bin", "", "BMC", nil, "Exception", "1.45.455b66-rev4", "not firmware"},
		{"missing image", "/none.bin", "", "BMC", nil, "Exception", "1.45.455b66-rev4", "404"},
		{"wrong target", "/bios.bin", "", "BMC", []string{firmwareURI + "/BMC"}, "Exception", "1.45.455b66-rev4", "not for"},
		{"injected failure", "/bmc.bin", "flash write error", "BMC", nil, "Exception", "1.45.455b66-rev4", "flash write error"},
		{"BIOS waits for a reset", "/bios.bin", "", "BIOS", nil, "Completed", "P79 v1.45", "next system reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := start(t, Config{UpdateDuration: 90 * time.Millisecond, PowerDelay: 10 * time.Millisecond})
			r.SetFaults(Faults{FailUpdate: tt.fail})
			c := connect(t, r.URL, false)
			us, err := c.Service.UpdateService()
			if err != nil {
				t.Fatal(err)
			}
			info, err := us.SimpleUpdate(&schemas.UpdateServiceSimpleUpdateParameters{ImageURI: images + tt.image, Targets: tt.target})
			if err != nil || info == nil || info.TaskMonitor == "" {
				t.Fatalf("SimpleUpdate: %v %+v", err, info)
			}
			var task *schemas.Task
			waitFor(t, "task end", func() bool {
				task, err = schemas.GetObject[schemas.Task](c, info.TaskMonitor)
				return err == nil && (task.TaskState == schemas.CompletedTaskState || task.TaskState == schemas.ExceptionTaskState)
			})
			last := task.Messages[len(task.Messages)-1].Message
			if string(task.TaskState) != tt.state || !strings.Contains(last, tt.message) {
				t.Errorf("task %s %q, want %s %q", task.TaskState, last, tt.state, tt.message)
			}
			if got := r.FirmwareVersion(tt.component); got != tt.version {
				t.Errorf("%s version %q, want %q", tt.component, got, tt.version)
			}
		})
	}
	t.Run("BIOS applied by the next power-on", func(t *testing.T) {
		r := start(t, Config{UpdateDuration: 10 * time.Millisecond, PowerDelay: 10 * time.Millisecond})
		c := connect(t, r.URL, true)
		us, _ := c.Service.UpdateService()
		if _, err := us.SimpleUpdate(&schemas.UpdateServiceSimpleUpdateParameters{ImageURI: images + "/bios.bin"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "BIOS P80 staged", func() bool { return r.StagedVersion("BIOS") == "P80" })
		sys := firstSystem(t, c)
		if _, err := sys.Reset(schemas.ForceRestartResetType); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "BIOS P80", func() bool { return r.FirmwareVersion("BIOS") == "P80" })
		if sys = firstSystem(t, c); sys.BiosVersion != "P80" {
			t.Errorf("system BiosVersion %q", sys.BiosVersion)
		}
	})
}

func TestFaults(t *testing.T) {
	r := start(t, Config{})
	r.SetFaults(Faults{Status: http.StatusServiceUnavailable})
	if _, err := gofish.Connect(gofish.ClientConfig{Endpoint: r.URL, Username: "admin", Password: "admin"}); err == nil ||
		!strings.Contains(err.Error(), "503") {
		t.Errorf("with 503 injected: %v", err)
	}
	r.SetFaults(Faults{Hang: true})
	client := &http.Client{Timeout: 100 * time.Millisecond}
	if _, err := gofish.Connect(gofish.ClientConfig{Endpoint: r.URL, HTTPClient: client}); err == nil {
		t.Error("a hanging BMC answered")
	}
	r.SetFaults(Faults{})
	connect(t, r.URL, false)
}

// Many emulators, each its own machine, answer at once.
func TestFarm(t *testing.T) {
	f, err := StartFarm(20, true, func(i int, c *Config) { c.Serial = "SN" + string(rune('A'+i)) })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	for i, b := range f.BMCs {
		wg.Go(func() {
			// gofish's own Insecure would set InsecureSkipVerify on a TLS
			// config it shares with http.DefaultTransport once that has sent a
			// request, turning verification off process-wide: bring a client.
			insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			c, err := gofish.Connect(gofish.ClientConfig{Endpoint: b.URL, Username: "admin", Password: "admin",
				HTTPClient: insecure, NoModifyTransport: true})
			if err != nil {
				t.Error(err)
				return
			}
			if s := firstSystem(t, c); s.SerialNumber != "SN"+string(rune('A'+i)) {
				t.Errorf("BMC %d serial %q", i, s.SerialNumber)
			}
		})
	}
	wg.Wait()
	// TLS verification on: the self-signed certificate is refused.
	verifying := &http.Client{Transport: &http.Transport{}}
	if _, err := gofish.Connect(gofish.ClientConfig{Endpoint: f.BMCs[0].URL, HTTPClient: verifying}); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Errorf("self-signed certificate accepted: %v", err)
	}
}

// TestSeveralSystems: a chassis BMC serves each of its systems with its
// own NICs, power and boot override.
func TestSeveralSystems(t *testing.T) {
	boots := make(chan BootEvent, 4)
	r := start(t, Config{Systems: 3, PowerDelay: 20 * time.Millisecond, HostMACs: []string{"52:54:00:00:01:01"},
		SystemMACs: [][]string{{"52:54:00:00:02:01"}}, OnBoot: func(ev BootEvent) { boots <- ev }})
	c := connect(t, r.URL, false)
	systems, err := c.Service.Systems()
	if err != nil || len(systems) != 3 {
		t.Fatalf("%d systems, %v", len(systems), err)
	}
	slices.SortFunc(systems, func(a, b *schemas.ComputerSystem) int { return strings.Compare(a.ODataID, b.ODataID) })
	seen := map[string]string{}
	for _, sys := range systems {
		nics, err := sys.EthernetInterfaces()
		if err != nil || len(nics) == 0 {
			t.Fatalf("%s NICs: %v", sys.ODataID, err)
		}
		for _, nic := range nics {
			if other, dup := seen[nic.MACAddress]; dup && other != sys.ODataID {
				t.Fatalf("%s and %s both report %s", other, sys.ODataID, nic.MACAddress)
			}
			seen[nic.MACAddress] = sys.ODataID
		}
	}
	if seen["52:54:00:00:02:01"] != systems[1].ODataID || !strings.HasSuffix(systems[2].ODataID, "-3") {
		t.Fatalf("MACs by system: %v", seen)
	}
	third := systems[2]
	if _, err := third.Reset(schemas.ForceRestartResetType); err != nil {
		t.Fatal(err)
	}
	if ev := <-boots; ev.System != third.ODataID || len(ev.MACs) == 0 || seen[strings.ToUpper(ev.MACs[0])] != third.ODataID {
		t.Fatalf("boot event %+v", ev)
	}
	if r.PowerState(systems[0].ODataID) != "On" {
		t.Fatalf("resetting one system changed another: %s", r.PowerState(systems[0].ODataID))
	}
}
