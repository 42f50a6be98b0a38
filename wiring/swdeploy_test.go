package wiring

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/bmcemu"
	"github.com/slipway/slipway/testbed/testkit"
)

// usmSite is a rack of onboarded hosts behind emulated BMCs, with USM's
// API trusting one gpg key.
type usmSite struct {
	*nicoRack
	signer *testkit.Signer
	// kernels are the sizes of the kernels each node netbooted, in order.
	mu      sync.Mutex
	kernels map[int][]int64
}

func startUSMSite(t *testing.T, n int) *usmSite {
	s := &usmSite{signer: testkit.NewSigner(t, "site-releases"), kernels: map[int][]int64{}}
	s.nicoRack = startNICoRack(t, fleetOptions{n: n, edit: func(c *config.Config) { c.USM.TrustedKeys = []string{s.signer.PublicKey} },
		booted: func(i int, r testbed.BootReport) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.kernels[i] = append(s.kernels[i], r.KernelBytes)
		}})
	return s
}

// kernelsOf are the sizes of the kernels node i netbooted, in order.
func (s *usmSite) kernelsOf(i int) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.kernels[i])
}

// lastKernel is the size of the kernel node i netbooted last.
func (s *usmSite) lastKernel(i int) int64 {
	k := s.kernelsOf(i)
	if len(k) == 0 {
		return -1
	}
	return k[len(k)-1]
}

// usm calls USM's API as StarlingX's CLI does.
func (s *usmSite) usm(method, path, body string) (int, string) {
	req, _ := http.NewRequest(method, s.urls.USM+"/v1"+path, strings.NewReader(body))
	req.Header.Set("X-Auth-Token", s.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return testkit.Do(s.t, req)
}

// ok calls USM and wants a 200 whose error is empty.
func (s *usmSite) ok(method, path, body string) string {
	s.t.Helper()
	code, answer := s.usm(method, path, body)
	if code != 200 || strings.Contains(answer, `"error":"`) && !strings.Contains(answer, `"error":""`) {
		s.t.Fatalf("%s %s: %d %s", method, path, code, answer)
	}
	return answer
}

func (s *usmSite) upload(id, version string) {
	s.t.Helper()
	if code, body := uploadRelease(s.t, s.urls.USM, s.token, s.signer, id, version); code != 200 {
		s.t.Fatalf("upload %s: %d %s", id, code, body)
	}
}

// uploadRelease makes a release signed by signer and uploads it to USM at
// usmURL as StarlingX's CLI does: one multipart part per file, named by
// its path.
func uploadRelease(t *testing.T, usmURL, token string, signer *testkit.Signer, id, version string) (int, string) {
	t.Helper()
	dir := t.TempDir()
	// StarlingX's CLI uploads .patch and .sig files only.
	archive := testkit.ReleaseArchive(t, dir, id+".patch", testkit.ReleaseFiles(id, version))
	sig := signer.Sign(t, archive, filepath.Join(dir, id+".sig"))
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range []string{archive, sig} {
		w, _ := mw.CreateFormFile(p, p)
		data, _ := os.ReadFile(p)
		_, _ = w.Write(data)
	}
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, usmURL+"/v1/release", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-Auth-Token", token)
	return testkit.Do(t, req)
}

// deployState waits for the deploy to reach state.
func (s *usmSite) deployState(want string) {
	s.t.Helper()
	var last string
	testkit.WaitForWithin(s.t, 90*time.Second, "deploy-"+want, func() bool {
		_, last = s.usm(http.MethodGet, "/deploy", "")
		return strings.Contains(last, `"state":"`+want+`"`)
	})
}

// hostStates are the deploy's hosts' states, by hostname.
func (s *usmSite) hostStates() map[string]string {
	_, body := s.usm(http.MethodGet, "/deploy_host", "")
	var hosts []map[string]any
	_ = json.Unmarshal([]byte(body), &hosts)
	out := map[string]string{}
	for _, h := range hosts {
		for _, key := range []string{"hostname", "software_release", "target_release", "reboot_required", "host_state"} {
			if _, ok := h[key]; !ok {
				s.t.Errorf("a deploy_host entry lacks %s (the CLI's host-list reads it): %v", key, h)
			}
		}
		out[h["hostname"].(string)] = h["host_state"].(string) + "@" + h["software_release"].(string)
	}
	return out
}

// The whole lifecycle against the testbed: a signed release uploaded,
// prechecked, started; three hosts reprovisioned into it through their
// BMCs (one fails while its BMC is down, and is deployed again), activated,
// completed, deleted: the release is deployed and the hosts netboot it.
// Then a second release is started, one host deployed, the deploy aborted
// and that host rolled back: it runs the first release again, and the
// second release is available once the deploy is deleted.
func TestUSMDeployLifecycle(t *testing.T) {
	s := startUSMSite(t, 3)
	bus := subscribe(t, "tcp://"+strings.TrimPrefix(s.urls.MQTT, "mqtt://"), "slipway/v1/usm/deploy")
	s.upload("slipway-os-1.0.0", "1.0.0")
	names := []string{}
	for _, m := range s.machines {
		names = append(names, m.Hostname)
	}

	pre := s.ok(http.MethodPost, "/deploy/slipway-os-1.0.0/precheck", `{}`)
	if !strings.Contains(pre, `"system_healthy":true`) || !strings.Contains(pre, `System Health:\nRelease slipway-os-1.0.0 is available: [OK]`) {
		t.Errorf("precheck: %s", pre)
	}
	if code, body := s.usm(http.MethodPost, "/deploy/nope/precheck", `{}`); code != 406 || !strings.Contains(body, "Release nope can not be found") {
		t.Errorf("precheck of nothing: %d %s", code, body)
	}
	if code, body := s.usm(http.MethodPost, "/deploy/activate", `{}`); code != 406 || !strings.Contains(body, "No deployment in progress") {
		t.Errorf("activate with no deploy: %d %s", code, body)
	}
	if info := s.ok(http.MethodPost, "/deploy/slipway-os-1.0.0/start", `{}`); !strings.Contains(info, "is now starting") {
		t.Errorf("start: %s", info)
	}
	s.deployState("start-done")
	if code, body := s.usm(http.MethodPost, "/deploy/slipway-os-1.0.0/start", `{}`); code != 406 || !strings.Contains(body, "There is already a deployment in progress (start-done)") {
		t.Errorf("a second start: %d %s", code, body)
	}
	if code, body := s.usm(http.MethodGet, "/release/slipway-os-1.0.0", ""); code != 200 || !strings.Contains(body, `"state":"deploying"`) {
		t.Errorf("the release while deploying: %s", body)
	}
	if hs := s.hostStates(); len(hs) != 3 || hs[names[0]] != "pending@" {
		t.Fatalf("hosts %v", hs)
	}
	// USM's answers and the console's views, pinned.
	golden := map[string]string{"usm-precheck": pre}
	for name, path := range map[string]string{"usm-releases": "/release", "usm-release": "/release/slipway-os-1.0.0",
		"usm-deploy": "/deploy", "usm-deploy-hosts": "/deploy_host", "usm-software-upgrade": "/deploy/software_upgrade"} {
		_, golden[name] = s.usm(http.MethodGet, path, "")
	}
	_, golden["usm-refusal"] = s.usm(http.MethodPost, "/deploy/complete", `{}`)
	_, golden["http-releases"] = s.api(http.MethodGet, "/api/v1/releases", "")
	_, golden["http-deploy"] = s.api(http.MethodGet, "/api/v1/deploy", "")
	for name, doc := range golden {
		checkGolden(t, name, []byte(strings.ReplaceAll(doc, s.signer.Fingerprint, "<fingerprint>")))
	}

	// The first host; the second while its BMC is down (it fails), then again.
	s.ok(http.MethodPost, "/deploy_host/"+names[0], "")
	s.fleet.Farm.BMCs[1].SetFaults(bmcemu.Faults{Status: http.StatusServiceUnavailable})
	s.ok(http.MethodPost, "/deploy_host/"+names[1], "")
	s.deployState("host-failed")
	if hs := s.hostStates(); hs[names[1]] != "failed@" {
		t.Errorf("the host whose BMC is down: %v", hs)
	}
	s.fleet.Farm.BMCs[1].SetFaults(bmcemu.Faults{})
	testkit.WaitFor(t, names[0]+" deployed", func() bool { return s.hostStates()[names[0]] == "deployed@1.0.0" })
	s.ok(http.MethodPost, "/deploy_host/"+names[1], "")
	s.ok(http.MethodPost, "/deploy_host/"+names[2], "")
	s.deployState("host-done")
	if code, body := s.usm(http.MethodPost, "/deploy/complete", `{}`); code != 406 || !strings.Contains(body, "Deploy must be in activate-done state to be able to complete.") {
		t.Errorf("complete before activate: %d %s", code, body)
	}
	s.ok(http.MethodPost, "/deploy/activate", `{}`)
	s.deployState("activate-done")
	s.ok(http.MethodPost, "/deploy/complete", `{}`)
	if body := s.ok(http.MethodGet, "/deploy/software_upgrade", ""); body != `{"from_release":"","state":"completed","to_release":"1.0"}` {
		t.Errorf("software_upgrade: %s", body)
	}
	s.ok(http.MethodDelete, "/deploy", "")
	if body := s.ok(http.MethodGet, "/release/slipway-os-1.0.0/is_deployed", ""); body != "true" {
		t.Errorf("is_deployed: %s", body)
	}
	if body := s.ok(http.MethodGet, "/deploy", ""); body != "[]" {
		t.Errorf("deploy after delete: %s", body)
	}
	// The bus told every state of the deploy, then cleared it.
	var states []string
	for more := true; more; {
		select {
		case m := <-bus:
			var d struct{ State string }
			_ = json.Unmarshal(m.Payload(), &d)
			if len(m.Payload()) == 0 {
				d.State = "(cleared)"
			}
			if len(states) == 0 || states[len(states)-1] != d.State {
				states = append(states, d.State)
			}
		case <-time.After(time.Second):
			more = false
		}
	}
	if got := strings.Join(states, " "); !strings.HasPrefix(got, "start start-done host") || !strings.Contains(got, "host-failed") ||
		!strings.HasSuffix(got, "host-done activate activate-done completed (cleared)") {
		t.Errorf("the deploy's states on MQTT: %s", got)
	}
	// Each host netbooted the release's kernel, onboarded, and runs it.
	kernel1 := int64(len(testkit.ReleaseFiles("slipway-os-1.0.0", "1.0.0")["boot/vmlinuz"]))
	for i, m := range s.machines {
		if k := s.lastKernel(i); k != kernel1 {
			t.Errorf("%s last netbooted a kernel of %d bytes, not the release's %d", m.ID, k, kernel1)
		}
		_, body := s.api(http.MethodGet, "/api/v1/machines/"+m.ID, "")
		if !strings.Contains(body, `"state":"ready"`) || !strings.Contains(body, `"release_id":"slipway-os-1.0.0"`) {
			t.Errorf("%s after the deploy: %s", m.ID, body)
		}
	}

	// A second release: one host deployed, then the deploy aborted and that
	// host rolled back.
	s.upload("slipway-os-2.0.0", "2.0.0")
	s.ok(http.MethodPost, "/deploy/start", `{"releases":["slipway-os-2.0.0"],"force":false}`)
	s.deployState("start-done")
	s.ok(http.MethodPost, "/deploy_host/"+names[0], "")
	testkit.WaitForWithin(t, 90*time.Second, names[0]+" on 2.0.0", func() bool { return s.hostStates()[names[0]] == "deployed@2.0.0" })
	s.ok(http.MethodPost, "/deploy/abort", `{}`)
	s.deployState("host-rollback")
	if hs := s.hostStates(); hs[names[0]] != "rollback-pending@2.0.0" || hs[names[1]] != "rollback-deployed@1.0.0" {
		t.Errorf("after abort: %v", hs)
	}
	if code, body := s.usm(http.MethodDelete, "/deploy", ""); code != 406 || !strings.Contains(body, "Delete is only allowed") {
		t.Errorf("delete while rolling back: %d %s", code, body)
	}
	s.ok(http.MethodPost, "/deploy_host/"+names[0]+"/rollback", "")
	s.deployState("host-rollback-done")
	if hs := s.hostStates(); hs[names[0]] != "rollback-deployed@1.0.0" {
		t.Errorf("after the rollback: %v", hs)
	}
	kernel2 := int64(len(testkit.ReleaseFiles("slipway-os-2.0.0", "2.0.0")["boot/vmlinuz"]))
	if k := s.kernelsOf(0); len(k) < 2 || k[len(k)-2] != kernel2 || k[len(k)-1] != kernel1 {
		t.Errorf("%s's kernels: %v; want release 2's (%d) then release 1's (%d) again", names[0], k, kernel2, kernel1)
	}
	s.ok(http.MethodDelete, "/deploy", "")
	for id, want := range map[string]string{"slipway-os-1.0.0": "is_deployed", "slipway-os-2.0.0": "is_available"} {
		if body := s.ok(http.MethodGet, "/release/"+id+"/"+want, ""); body != "true" {
			t.Errorf("%s %s: %s", id, want, body)
		}
	}
}
