package native

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
)

// fakeBMCs answers with fixed results, or err for everything when set.
type fakeBMCs struct {
	err   error
	calls []string
}

func (f *fakeBMCs) Statuses() []bmc.Status {
	return []bmc.Status{{ID: "bmc-a", Username: "root", Reachable: true}}
}
func (f *fakeBMCs) Status(id string) (bmc.Status, error) {
	if id != "bmc-a" {
		return bmc.Status{}, fmt.Errorf("BMC %s: %w", id, bmc.ErrUnknownBMC)
	}
	return bmc.Status{ID: id, Username: "root"}, nil
}
func (f *fakeBMCs) Register(_ context.Context, r bmc.Registration) (bmc.Status, error) {
	f.calls = append(f.calls, "register "+r.Endpoint+" "+r.Source)
	return bmc.Status{ID: bmc.IDFor(r.Endpoint), Endpoint: r.Endpoint}, f.err
}
func (f *fakeBMCs) Remove(_ context.Context, id string) error {
	f.calls = append(f.calls, "remove "+id)
	if id != "bmc-a" {
		return fmt.Errorf("BMC %s: %w", id, bmc.ErrUnknownBMC)
	}
	return f.err
}
func (f *fakeBMCs) Power(_ context.Context, id string, a bmc.PowerAction) (string, error) {
	f.calls = append(f.calls, "power "+id+" "+string(a))
	return "ForceOff", f.err
}
func (f *fakeBMCs) Provision(_ context.Context, id string, o bmc.ProvisionOptions) (bmc.Provisioned, error) {
	f.calls = append(f.calls, "provision "+id+" "+o.Mode)
	return bmc.Provisioned{MachineID: id, Target: "Pxe", State: domain.HostInit(domain.HostInitWaitingForDiscovery)}, f.err
}

func TestBMCAPIChecksRolesAndMapsErrors(t *testing.T) {
	users := testAuth(t)
	tests := []struct {
		name, method, path, user, body string
		err                            error
		status                         int
		want                           string // in the body
		call                           string
	}{
		{"list needs a login", "GET", "/api/v1/bmcs", "", "", nil, 401, "log in", ""},
		{"list", "GET", "/api/v1/bmcs", "vic:vic-password", "", nil, 200, `"bmc_id":"bmc-a"`, ""},
		{"credentials never shown", "GET", "/api/v1/bmcs/bmc-a", "vic:vic-password", "", nil, 200, `"bmc_id":"bmc-a"`, ""},
		{"unknown BMC", "GET", "/api/v1/bmcs/nope", "vic:vic-password", "", nil, 404, "no such BMC", ""},
		{"power without credentials", "POST", "/api/v1/bmcs/bmc-a/power", "", `{"action":"off"}`, nil, 401, "log in", ""},
		{"power with a wrong password", "POST", "/api/v1/bmcs/bmc-a/power", "otto:nope", `{"action":"off"}`, nil, 401, "wrong user name or password", ""},
		{"power as a viewer", "POST", "/api/v1/bmcs/bmc-a/power", "vic:vic-password", `{"action":"off"}`, nil, 403, `user \"vic\" has role viewer; this needs operator`, ""},
		{"power as an operator", "POST", "/api/v1/bmcs/bmc-a/power", "otto:otto-password", `{"action":"off"}`, nil, 202, `"reset_type":"ForceOff"`, "power bmc-a off"},
		{"unknown power action", "POST", "/api/v1/bmcs/bmc-a/power", "otto:otto-password", `{"action":"explode"}`, nil, 400, "use on, off, shutdown or restart", ""},
		{"BMC refused", "POST", "/api/v1/bmcs/bmc-a/power", "otto:otto-password", `{"action":"on"}`,
			&bmc.ActionError{BMC: "bmc-a", Action: "power on", Message: "the BMC answered HTTP 500"}, 502, "the BMC answered HTTP 500", "power bmc-a on"},
		{"provision", "POST", "/api/v1/machines/m1/provision", "otto:otto-password", `{"boot_mode":"Legacy"}`, nil, 202, `"hostinit"`, "provision m1 Legacy"},
		{"provision, no body", "POST", "/api/v1/machines/m1/provision", "otto:otto-password", "", nil, 202, `"boot_target":"Pxe"`, "provision m1 "},
		{"provision, bad mode", "POST", "/api/v1/machines/m1/provision", "otto:otto-password", `{"boot_mode":"BIOS"}`, nil, 400, "use UEFI or Legacy", ""},
		{"provision refused by the lifecycle", "POST", "/api/v1/machines/m1/provision", "otto:otto-password", "",
			&domain.IllegalTransitionError{}, 409, "", "provision m1 "},
		{"provision, malformed body", "POST", "/api/v1/machines/m1/provision", "otto:otto-password", `{`, nil, 400, "not the JSON object", ""},
		{"register needs admin", "POST", "/api/v1/bmcs", "otto:otto-password", `{"endpoint":"https://10.0.0.9"}`, nil, 403, "this needs admin", ""},
		{"register", "POST", "/api/v1/bmcs", "ann:ann-password", `{"endpoint":"https://10.0.0.9","username":"root","password":"x"}`, nil, 201, `"bmc_id":"bmc-10.0.0.9"`, "register https://10.0.0.9 api"},
		{"remove needs admin", "DELETE", "/api/v1/bmcs/bmc-a", "otto:otto-password", "", nil, 403, "this needs admin", ""},
		{"remove", "DELETE", "/api/v1/bmcs/bmc-a", "ann:ann-password", "", nil, 204, "", "remove bmc-a"},
		{"remove an unknown BMC", "DELETE", "/api/v1/bmcs/nope", "ann:ann-password", "", nil, 404, "no such BMC", "remove nope"},
		{"register refused", "POST", "/api/v1/bmcs", "ann:ann-password", `{"endpoint":"x"}`, errors.New(`"x" is not a BMC endpoint`), 400, "is not a BMC endpoint", "register x api"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeBMCs{err: tt.err}
			s, err := newTestServer(Services{BMCs: fake, Auth: users})
			if err != nil {
				t.Fatal(err)
			}
			go s.Serve()
			t.Cleanup(func() { s.Shutdown(context.Background()) })
			req, _ := http.NewRequest(tt.method, "http://"+s.Addr().String()+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			if user, pass, ok := strings.Cut(tt.user, ":"); ok {
				req.SetBasicAuth(user, pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
				t.Errorf("%d %s, want %d with %q", resp.StatusCode, body, tt.status, tt.want)
			}
			if strings.Contains(string(body), "root") || (resp.StatusCode >= 400 && !json.Valid(body)) {
				t.Errorf("body %s: shows the username or is not JSON", body)
			}
			if got := strings.Join(fake.calls, ";"); got != tt.call {
				t.Errorf("calls %q, want %q", got, tt.call)
			}
		})
	}
}
