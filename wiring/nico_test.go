package wiring

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/broker/nicoschema"
	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/bmcemu"
	"github.com/slipway/slipway/testbed/testkit"
)

const nicoSite = "6f1c2e8a-4b0d-4c47-9d1e-2a7f3c5b8e90"

// nicoRack is an appliance with n emulated trays, every one netbooted to
// ready, and what its tests call it with.
type nicoRack struct {
	t        *testing.T
	urls     URLs
	machines []config.Machine
	fleet    *testbed.BMCFleet
	token    string
}

func startNICoRack(t *testing.T, o fleetOptions) *nicoRack {
	t.Helper()
	hash, _ := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	edit := o.edit
	o.edit = func(c *config.Config) {
		c.NICo.SiteID = nicoSite
		if edit != nil {
			edit(c)
		}
	}
	urls, machines, booted, fleet := startFleet(t, t.Context(), o, config.User{Name: testUser, Role: "admin", PasswordHash: string(hash)})
	r := &nicoRack{t: t, urls: urls, machines: machines, fleet: fleet}
	// A tray must be ready to be updated: each netboots and onboards once.
	for _, m := range machines {
		testkit.WaitFor(t, m.ID+"'s BMC polled", func() bool {
			code, _ := r.api(http.MethodPost, "/api/v1/machines/"+m.ID+"/provision", `{}`)
			return code == http.StatusAccepted
		})
	}
	for range machines {
		if err := <-booted; err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range machines {
		testkit.WaitFor(t, m.ID+" ready", func() bool {
			_, body := r.api(http.MethodGet, "/api/v1/machines/"+m.ID, "")
			return strings.Contains(body, `"state":"ready"`)
		})
	}
	r.token = loginToken(t, urls.HTTP)
	return r
}

func (r *nicoRack) api(method, path, body string) (int, string) {
	return testkit.Request(r.t, method, r.urls.HTTP+path, testUser, testPassword, body)
}

func (r *nicoRack) nico(method, path, body string) (int, string) {
	req, _ := http.NewRequest(method, r.urls.HTTP+"/v2/org/acme/nico"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	return testkit.Do(r.t, req)
}

// failUpdates makes tray i's BMC end every firmware update in an
// exception with msg.
func (r *nicoRack) failUpdates(i int, msg string) {
	r.fleet.Farm.BMCs[i].SetFaults(bmcemu.Faults{FailUpdate: msg})
}

// upload puts an image of component at version into the library.
func (r *nicoRack) upload(component, version string) {
	image := []byte("FIRMWARE " + component + " " + version + "\n" + strings.Repeat("bits", 512))
	sum := sha256.Sum256(image)
	uploadImage(r.t, r.urls.HTTP+"/api/v1/firmware?component="+component+"&version="+version+"&sha256="+hex.EncodeToString(sum[:]), image)
}

// patch sends a firmware update and returns its task ids.
func (r *nicoRack) patch(path, body string) []string {
	var patch struct {
		TaskIDs []string `json:"taskIds"`
	}
	var code int
	var answer string
	// The lifecycle's memory follows a commit a moment after a reader sees it.
	testkit.WaitFor(r.t, "the update accepted", func() bool {
		code, answer = r.nico(http.MethodPatch, path, body)
		return code == http.StatusOK
	})
	if err := json.Unmarshal([]byte(answer), &patch); err != nil {
		r.t.Fatalf("PATCH %s: %d %s", path, code, answer)
	}
	return patch.TaskIDs
}

// ended waits for a task to end and returns it as the native API shows it.
func (r *nicoRack) ended(id string) string {
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		_, task := r.api(http.MethodGet, "/api/v1/tasks/"+id, "")
		if strings.Contains(task, `"status":"succeeded"`) || strings.Contains(task, `"status":"failed"`) {
			return task
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("task %s did not end: %s", id, task)
		}
	}
}

// NICo's tray firmware API drives a real update: two targets of one compute
// tray through its emulated BMC, one after the other; the versions change
// and the tray list shows it.
func TestNICoUpdatesATrayThroughItsBMC(t *testing.T) {
	r := startNICoRack(t, fleetOptions{n: 1})
	id := r.machines[0].ID
	r.upload("BMC", "7.7.7")
	r.upload("BIOS", "7.7.7")
	ids := r.patch("/tray/firmware", `{"siteId":"`+nicoSite+`","filter":{"ids":["`+id+`"]},"targets":["bmc","bios"],"version":"7.7.7"}`)
	if len(ids) != 2 {
		t.Fatalf("task ids %v", ids)
	}
	for _, task := range ids {
		if body := r.ended(task); !strings.Contains(body, `"status":"succeeded"`) || !strings.Contains(body, `"batch":"`) {
			t.Errorf("update: %s", body)
		}
	}
	testkit.WaitFor(t, "the tray list to show the new version", func() bool {
		_, trays := r.nico(http.MethodGet, "/tray?ids="+id, "")
		return strings.Contains(trays, `"firmwareVersion":"7.7.7"`)
	})
}

// A rack of mixed trays in one PATCH: the power shelf's PSU, the switch's
// BMC and CPLD, the compute tray's BMC. The switch's BMC fails every flash:
// its updates end failed with the BMC's words, and the others finish; the
// compute tray waits for the switch's updates to end before it starts.
func TestNICoUpdatesAMixedRack(t *testing.T) {
	types := []string{"powershelf", "switch", "compute"}
	r := startNICoRack(t, fleetOptions{n: 3,
		edit: func(c *config.Config) {
			for i := range c.Machines {
				c.Machines[i].Rack.TrayType, c.Machines[i].Rack.Tray = types[i], i+1
			}
		},
		tweak: func(i int, c *bmcemu.Config) {
			c.ExtraFirmware = []map[string]string{{"PSU": "1.0", "PMC": "1.0"}, {"CPLD": "1.0", "NVOS": "1.0"}, nil}[i]
		},
	})
	// The switch's BMC refuses every flash from now on.
	r.failUpdates(1, "flash write error at 0x4000")
	states := subscribe(t, "tcp://"+strings.TrimPrefix(r.urls.MQTT, "mqtt://"), "NICO/v1/machine/+/state")
	for _, c := range []string{"PSU", "CPLD", "BMC"} {
		r.upload(c, "2.0")
	}
	ids := r.patch("/rack/firmware", `{"siteId":"`+nicoSite+`","filter":{"rackId":"r01"},"targets":["psu","bmc","cpld"],"version":"2.0"}`)
	if len(ids) != 4 { // ps:psu, sw:bmc, sw:cpld, compute:bmc
		t.Fatalf("task ids %v", ids)
	}
	var finished []time.Time
	for i, id := range ids {
		body := r.ended(id)
		var task struct {
			Status     string    `json:"status"`
			MachineID  string    `json:"machine_id"`
			Message    string    `json:"message"`
			FinishedAt time.Time `json:"finished_at"`
		}
		_ = json.Unmarshal([]byte(body), &task)
		want := "succeeded"
		if task.MachineID == r.machines[1].ID {
			want = "failed"
			if !strings.Contains(body, "flash write error") {
				t.Errorf("the switch's update does not say why it failed: %s", body)
			}
		}
		if task.Status != want {
			t.Errorf("task %d on %s: %s (%s), want %s", i, task.MachineID, task.Status, task.Message, want)
		}
		finished = append(finished, task.FinishedAt)
	}
	if !finished[3].After(finished[1]) || !finished[3].After(finished[2]) {
		t.Errorf("the compute tray finished before the switch's updates ended: %v", finished)
	}
	for i, want := range map[int]map[string]string{0: {"PSU": "2.0"}, 1: {"BMC": "1.45.455b66-rev4", "CPLD": "1.0"}, 2: {"BMC": "2.0"}} {
		for component, version := range want {
			if got := r.fleet.Farm.BMCs[i].FirmwareVersion(component); got != version {
				t.Errorf("tray %d's %s is %q, want %q", i, component, got, version)
			}
		}
	}
	_, trays := r.nico(http.MethodGet, "/tray?rackId=r01", "")
	if !strings.Contains(trays, `"type":"powershelf"`) || !strings.Contains(trays, `"position":3`) {
		t.Errorf("trays: %s", trays)
	}
	// Every tray went through hostreprovision, each message valid NICo; the
	// switch's failure is its cause.
	seen := map[string]bool{}
	for more := true; more; {
		select {
		case m := <-states:
			if err := nicoschema.Validate(m.Payload()); err != nil {
				t.Errorf("%s: %v\n%s", m.Topic(), err, m.Payload())
			}
			for _, want := range []string{`"hostreprovision"`, `"failedfirmwareupgrade"`} {
				if strings.Contains(string(m.Payload()), want) {
					seen[want] = true
				}
			}
		case <-time.After(2 * time.Second):
			more = false
		}
	}
	if !seen[`"hostreprovision"`] || !seen[`"failedfirmwareupgrade"`] {
		t.Errorf("machine state messages seen: %v; want the reprovisioning and the switch's failed upgrade", seen)
	}
}

// Target dpu reinstalls a compute tray's DPU through the DPU's own BMC:
// the site's DPU OS version (the request names none) is installed, the
// host is powered off, kept off and on again, and the DPU reports the new
// version; the host went through dpureprovision's states, each message
// valid NICo, and is ready again. A failed install leaves the host in
// dpureprovision with its cause, and a second request (overriding the
// readiness check) finishes it.
func TestNICoReprovisionsATraysDPU(t *testing.T) {
	r := startNICoRack(t, fleetOptions{n: 2,
		edit: func(c *config.Config) {
			c.Machines[1].DPUOf, c.Machines[1].Rack = c.Machines[0].ID, nil
			c.NICo.DPU.OSVersion, c.NICo.DPU.BufferTime = "4.9.1", time.Second
		},
		tweak: func(i int, c *bmcemu.Config) {
			if i == 1 {
				c.ExtraFirmware = map[string]string{"DPU_OS": "4.8.0"}
			}
		},
	})
	host, dpu := r.machines[0].ID, r.machines[1].ID
	_, trays := r.nico(http.MethodGet, "/tray", "")
	if strings.Contains(trays, `"id":"`+dpu+`"`) || !strings.Contains(trays, `"id":"`+host+`"`) {
		t.Fatalf("the DPU is part of its host's tray, not a tray: %s", trays)
	}
	body := `{"siteId":"` + nicoSite + `","filter":{"ids":["` + host + `"]},"targets":["dpu"]}`
	if code, answer := r.nico(http.MethodPatch, "/tray/firmware", body); code != http.StatusBadRequest || !strings.Contains(answer, "DPU_OS") {
		t.Errorf("without a DPU_OS image: %d %s", code, answer)
	}
	r.upload("DPU_OS", "4.9.1")
	states := subscribe(t, "tcp://"+strings.TrimPrefix(r.urls.MQTT, "mqtt://"), "NICO/v1/machine/"+host+"/state")
	// The DPU's BMC fails the first install: the host stays in
	// dpureprovision with the BMC's words, until it is started again.
	r.failUpdates(1, "BFB signature rejected")
	ids := r.patch("/tray/firmware", body)
	if task := r.ended(ids[0]); len(ids) != 1 || !strings.Contains(task, `"status":"failed"`) || !strings.Contains(task, "BFB signature rejected") {
		t.Fatalf("a failing DPU install: %v %s", ids, task)
	}
	if code, answer := r.nico(http.MethodPatch, "/tray/firmware", body); code != http.StatusBadRequest || !strings.Contains(answer, "dpureprovision") {
		t.Errorf("a host left in dpureprovision is not ready: %d %s", code, answer)
	}
	r.fleet.Farm.BMCs[1].SetFaults(bmcemu.Faults{})
	ids = r.patch("/tray/firmware", strings.Replace(body, `"targets"`, `"overrideReadinessCheck":true,"targets"`, 1))
	if len(ids) != 1 {
		t.Fatalf("task ids %v", ids)
	}
	if task := r.ended(ids[0]); !strings.Contains(task, `"status":"succeeded"`) || !strings.Contains(task, `"kind":"dpu-reprovision"`) {
		t.Fatalf("DPU reprovisioning: %s", task)
	}
	if got := r.fleet.Farm.BMCs[1].FirmwareVersion("DPU_OS"); got != "4.9.1" {
		t.Errorf("the DPU runs %q", got)
	}
	var seen []string
	for more := true; more; {
		select {
		case m := <-states:
			if err := nicoschema.Validate(m.Payload()); err != nil {
				t.Errorf("%v\n%s", err, m.Payload())
			}
			var msg struct {
				State struct {
					State string `json:"state"`
					DPUs  struct {
						States map[string]json.RawMessage `json:"states"`
					} `json:"dpu_states"`
				} `json:"managed_host_state"`
			}
			_ = json.Unmarshal(m.Payload(), &msg)
			step := msg.State.State + " " + string(msg.State.DPUs.States[dpu])
			if len(seen) == 0 || seen[len(seen)-1] != step {
				seen = append(seen, step)
			}
		case <-time.After(2 * time.Second):
			more = false
		}
	}
	joined := strings.Join(seen, "\n")
	t.Logf("the host's states:\n%s", joined)
	for _, want := range []string{`BMC ended the install Exception: BFB signature rejected"`, `"installingbfb"`, `"waitforinstallcomplete"`, `"completed"`, `"poweringoffhost"`, `"powerdown"`,
		`"buffertime"`, `"verifyfirmareversions"`, "\nready "} {
		if !strings.Contains(joined, want) {
			t.Errorf("the host's states do not show %s:\n%s", want, joined)
		}
	}
}
