package nodes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/netboot/cloudinit"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
	"github.com/slipway/slipway/web"
)

type onboardingServer struct {
	base      string
	db        *store.Store
	templates string
}

// startOnboarding serves the node-facing doors over a real store, inventory
// and cloud-init renderer.
func startOnboarding(t *testing.T, callers ...Callers) onboardingServer {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "slipway.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	commit := db.NewCommitter(64)
	t.Cleanup(func() { commit.Close(); db.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	inv, err := domain.NewInventory(ctx, domain.InventoryConfig{DB: db, Commit: commit, Log: quiet, Discovery: domain.DiscoveryPolicy{Doors: domain.Doors}})
	if err != nil {
		t.Fatal(err)
	}
	ci := cloudinit.New(cloudinit.Config{TemplatesDir: dir, Templates: map[string]string{"debian": "debian.yaml"},
		DefaultProfile: "debian", LANIP: netip.MustParseAddr("10.88.0.1"), Logger: quiet}, inv)
	s, err := web.New(web.Config{Addr: netip.MustParseAddr("127.0.0.1"), Metrics: prometheus.NewRegistry(), Logger: quiet},
		New(Config{Logger: quiet, CloudInit: ci, Onboarding: inv, ServerURL: "http://10.88.0.1:80", Callers: firstOr(callers)}))
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return onboardingServer{base: "http://" + s.Addr().String(), db: db, templates: dir}
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHeartbeatRejectsWhatIsNotInTheEnums(t *testing.T) {
	s := startOnboarding(t)
	tests := []struct {
		name, body string
		contains   []string
	}{
		{"unknown stage", `{"mac":"52:54:00:00:00:01","stage":"flashing","phase":"started"}`,
			[]string{`stage: \"flashing\" is not one of boot, cloud-init, disk, install, configure, validate, complete`, `"expected":["boot"`}},
		{"unknown phase", `{"mac":"52:54:00:00:00:01","stage":"install","phase":"ok"}`,
			[]string{`"allowed":["started","running","done","failed"]`, `"loc":["body","phase"]`}},
		{"no MAC", `{"stage":"install","phase":"started"}`, []string{"mac is required"}},
		{"a MAC that does not parse", `{"mac":"52:54:00:zz:00:01","stage":"install","phase":"started"}`, []string{`"loc":["body","mac"]`, "mac: "}},
		{"not JSON", `stage=install`, []string{"the body is not a JSON heartbeat"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(t, s.base+"/heartbeat", tt.body)
			if code != http.StatusUnprocessableEntity {
				t.Fatalf("got %d %s, want 422", code, body)
			}
			for _, want := range tt.contains {
				if !strings.Contains(body, want) {
					t.Errorf("body %s lacks %s", body, want)
				}
			}
		})
	}
	if events, _ := s.db.AllStageEvents(context.Background()); len(events) != 0 {
		t.Fatalf("a rejected heartbeat was recorded: %+v", events)
	}
}

// 200 heartbeats for one MAC at once: every one is acknowledged and every
// one is in the record afterwards.
func TestConcurrentHeartbeatsLoseNothing(t *testing.T) {
	s := startOnboarding(t)
	const writers = 200
	var wg sync.WaitGroup
	codes := make(chan int, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"mac":"52-54-00-AA-BB-CC","stage":"install","phase":"running","detail":"package %d"}`, i)
			resp, err := http.Post(s.base+"/heartbeat", "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != 200 {
			t.Fatalf("a heartbeat got %d", code)
		}
	}
	code, body := get(t, s.base+"/clients/52:54:00:aa:bb:cc")
	var rec clientJSON
	if err := json.Unmarshal([]byte(body), &rec); code != 200 || err != nil {
		t.Fatalf("GET /clients/mac = %d %s", code, body)
	}
	seen := map[string]bool{}
	for _, st := range rec.Stages {
		seen[st.Detail] = true
	}
	if len(rec.Stages) != writers || len(seen) != writers {
		t.Fatalf("%d stages with %d distinct details, want %d", len(rec.Stages), len(seen), writers)
	}
	if rec.MAC != "52:54:00:aa:bb:cc" || rec.IP != "127.0.0.1" || rec.Hostname != "node-525400aabbcc" || rec.CurrentStage != "install" {
		t.Fatalf("record %+v", rec)
	}
}

// A node walks the whole story through the doors; its machine ends ready
// with every step in its history.
func TestOnboardingDrivesTheLifecycle(t *testing.T) {
	s := startOnboarding(t)
	tmpl := "#cloud-config\nhostname: {{.Hostname}}\nwrite_files:\n  - path: /etc/slipway\n    content: \"{{.MAC}} {{.ServerURL}}\"\n"
	if err := os.WriteFile(filepath.Join(s.templates, "debian.yaml"), []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	mac := "52:54:00:00:00:07"
	code, userData := get(t, s.base+"/cloud-init/user-data?mac="+mac)
	if code != 200 || !strings.Contains(userData, "hostname: node-525400000007") || !strings.Contains(userData, mac+" http://127.0.0.1") {
		t.Fatalf("user-data %d:\n%s", code, userData)
	}
	for _, stage := range []string{"boot", "cloud-init", "disk", "install", "configure", "validate", "complete"} {
		for _, phase := range []string{"started", "done"} {
			if code, body := post(t, s.base+"/heartbeat", fmt.Sprintf(`{"mac":%q,"stage":%q,"phase":%q}`, mac, stage, phase)); code != 200 {
				t.Fatalf("heartbeat %s/%s: %d %s", stage, phase, code, body)
			}
		}
	}
	m, err := s.db.MachineByMAC(context.Background(), mac)
	if err != nil || m.State != "ready" {
		t.Fatalf("machine %+v, %v; want ready", m, err)
	}
	hist, _ := s.db.Transitions(context.Background(), m.ID)
	var path []string
	for _, h := range hist {
		st, _ := domain.ParseState(h.StateJSON)
		path = append(path, st.Label())
	}
	want := "created hostinit/discovered validation/disk validation/disk validation/install validation/install validation/configure validation/configure validation/validate validation/validate validation/complete ready"
	if got := strings.Join(path, " "); got != want {
		t.Fatalf("history\n got %s\nwant %s", got, want)
	}
}

func TestCloudInitFallsBackAndRefusesBadMACs(t *testing.T) {
	s := startOnboarding(t)
	// No template written: every fetch gets the fallback, for known and unknown MACs.
	for _, path := range []string{"/cloud-init/user-data?mac=52:54:00:00:00:08", "/cloud-init/user-data"} {
		code, body := get(t, s.base+path)
		if code != 200 || cloudinit.CheckUserData([]byte(body)) != nil || !strings.Contains(body, "Slipway fallback user-data") {
			t.Errorf("GET %s = %d\n%s", path, code, body)
		}
		// Why the template failed (its path on the box, its error) stays in
		// the log.
		if strings.Contains(body, "/templates") || strings.Contains(body, "no such file") {
			t.Errorf("GET %s shows the node the server's template path or error:\n%s", path, body)
		}
	}
	// A MAC that does not parse gets an error, not the requester's data.
	if code, body := get(t, s.base+"/cloud-init/user-data?mac=zz"); code != 400 || !strings.Contains(body, `mac=\"zz\" is not a MAC address`) {
		t.Errorf("GET ?mac=zz = %d %s", code, body)
	}
	for path, want := range map[string]string{
		"/cloud-init/meta-data?mac=52:54:00:00:00:08":      "instance-id: mac-525400000008\nlocal-hostname: node-525400000008\n",
		"/cloud-init/meta-data":                            "instance-id: slipway-unknown\n",
		"/cloud-init/vendor-data":                          "#cloud-config\n{}\n",
		"/cloud-init/network-config?mac=52:54:00:00:00:08": `macaddress: "52:54:00:00:00:08"`,
	} {
		if code, body := get(t, s.base+path); code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d\n%s\nwant %s", path, code, body, want)
		}
	}
	if code, body := get(t, s.base+"/clients/52:54:00:00:00:08"); code != 404 || !bytes.Contains([]byte(body), []byte("no heartbeats")) {
		t.Errorf("a MAC without heartbeats: %d %s", code, body)
	}
}

// FuzzParseHeartbeat: any body is refused with a reason or gives a
// heartbeat whose fields are inside their enumerations and bounds.
func FuzzParseHeartbeat(f *testing.F) {
	f.Add([]byte(`{"mac":"52:54:00:aa:bb:cc","stage":"install","phase":"running","detail":"412 of 980"}`), "")
	f.Add([]byte(`{"stage":"boot","phase":"started"}`), "52-54-00-AA-BB-CC")
	f.Add([]byte(`{"mac":"5254.00aa.bbcc","stage":"complete","phase":"done"}`), "")
	f.Add([]byte(`{"mac":1,"stage":null}`), "")
	f.Add([]byte(`[]`), "")
	f.Fuzz(func(t *testing.T, body []byte, queryMAC string) {
		hb, _, bad := parseHeartbeat(body, queryMAC)
		if bad != nil {
			if bad.field == "" || bad.msg == "" {
				t.Fatalf("a refusal without a field or a reason: %+v", bad)
			}
			return
		}
		if _, err := domain.ParseStage(string(hb.Stage)); err != nil {
			t.Fatalf("accepted stage %q", hb.Stage)
		}
		if _, err := domain.ParsePhase(string(hb.Phase)); err != nil {
			t.Fatalf("accepted phase %q", hb.Phase)
		}
		if hb.MAC != "" {
			if again, err := domain.ParseMAC(string(hb.MAC)); err != nil || again != hb.MAC {
				t.Fatalf("accepted MAC %q is not canonical", hb.MAC)
			}
		}
		if len(hb.Detail) > maxDetail {
			t.Fatalf("accepted a %d-byte detail", len(hb.Detail))
		}
	})
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return testkit.Request(t, http.MethodGet, url, "", "", "")
}

// The Host header becomes the server URL in a node's data only when it is
// a plain host and port: it lands in shell lines and YAML.
func TestHostHeaderIsAHostOrIgnored(t *testing.T) {
	for host, want := range map[string]bool{
		"10.88.0.1": true, "10.88.0.1:8080": true, "slipway.lab.example": true, "[fe80::1]:80": true, "boot-1:80": true,
		"": false, "10.88.0.1:0": false, "10.88.0.1:080": false, "x$(reboot)": false, "a'b": false, "a;b:80": false,
		"a b": false, "user@host": false, "host/path": false, "-lead": false, "10.88.0.1:8080:1": false, "`id`": false,
	} {
		if got := plainHost(host); got != want {
			t.Errorf("plainHost(%q) = %v, want %v", host, got, want)
		}
	}
	s := startOnboarding(t)
	req, _ := http.NewRequest(http.MethodGet, s.base+"/cloud-init/user-data?mac=52:54:00:00:00:08", nil)
	req.Host = "x';reboot;'"
	code, body := testkit.Do(t, req)
	if code != 200 || strings.Contains(body, "reboot") || !strings.Contains(body, "http://10.88.0.1:80/heartbeat") {
		t.Errorf("a hostile Host header: %d\n%s", code, body)
	}
}

// /clients answers every MAC's record; with limit it pages, by MAC, and
// says where the next page is.
func TestClientsPage(t *testing.T) {
	s := startOnboarding(t)
	for i := 1; i <= 5; i++ {
		if code, body := post(t, s.base+"/heartbeat", fmt.Sprintf(`{"mac":"52:54:00:00:0c:0%d","stage":"boot","phase":"started"}`, i)); code != 200 {
			t.Fatalf("heartbeat: %d %s", code, body)
		}
	}
	page := func(path string) (map[string]json.RawMessage, string) {
		t.Helper()
		resp, err := http.Get(s.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]json.RawMessage
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return out, resp.Header.Get("Link")
	}
	if all, link := page("/clients"); len(all) != 5 || link != "" {
		t.Fatalf("all: %d clients, Link %q", len(all), link)
	}
	var seen []string
	path := "/clients?limit=2"
	for path != "" {
		got, link := page(path)
		for mac := range got {
			seen = append(seen, mac)
		}
		path = ""
		if link != "" {
			path = strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(link, ";", 2)[0], "<"), ">")
		}
	}
	if len(seen) != 5 {
		t.Fatalf("pages gave %v", seen)
	}
	if code, _ := get(t, s.base+"/clients?limit=-1"); code != 400 {
		t.Errorf("a negative limit: %d", code)
	}
	if code, _ := get(t, s.base+"/clients?after=nope&limit=2"); code != 400 {
		t.Errorf("a bad after: %d", code)
	}
}

func firstOr(callers []Callers) Callers {
	if len(callers) == 0 {
		return nil
	}
	return callers[0]
}

// refuseBut refuses every caller of its MAC but the one with its token,
// and remembers who asked.
type refuseBut struct {
	mac, token string
	asked      *[]domain.Caller
}

func (r refuseBut) Prove(mac domain.MAC, from domain.Caller, door domain.Door) error {
	*r.asked = append(*r.asked, from)
	if string(mac) != r.mac || from.Token == r.token {
		return nil
	}
	return &domain.CallerRefusedError{MAC: mac, From: from.Addr}
}

// The doors put every request naming a MAC to the caller check, with the
// node token wherever the node put it, and answer a refusal with 403 and
// its reason; nothing of a refused heartbeat is kept.
func TestNodeDoorsProveTheCaller(t *testing.T) {
	var asked []domain.Caller
	s := startOnboarding(t, refuseBut{mac: "52:54:00:00:0f:01", token: "t0k", asked: &asked})
	const beat = `{"mac":"52:54:00:00:0f:01","stage":"boot","phase":"started"%s}`
	tests := []struct {
		name, method, url, body string
		header                  string // X-Slipway-Token
		want                    int
	}{
		{"heartbeat without a token", "POST", "/heartbeat", fmt.Sprintf(beat, ""), "", 403},
		{"heartbeat with another token", "POST", "/heartbeat", fmt.Sprintf(beat, `,"token":"nope"`), "", 403},
		{"heartbeat, token in the body", "POST", "/heartbeat", fmt.Sprintf(beat, `,"token":"t0k"`), "", 200},
		{"heartbeat, token in the header", "POST", "/heartbeat", fmt.Sprintf(beat, ""), "t0k", 200},
		{"heartbeat, token in the query", "POST", "/heartbeat?token=t0k", fmt.Sprintf(beat, ""), "", 200},
		{"another MAC's heartbeat", "POST", "/heartbeat", `{"mac":"52:54:00:00:0f:02","stage":"boot","phase":"started"}`, "", 200},
		{"user-data", "GET", "/cloud-init/user-data?mac=52:54:00:00:0f:01", "", "", 403},
		{"meta-data with the token", "GET", "/cloud-init/meta-data?mac=52:54:00:00:0f:01&token=t0k", "", "", 200},
		{"network-config", "GET", "/cloud-init/network-config?mac=52-54-00-00-0f-01", "", "", 403},
		{"boot actions", "GET", "/cloud-init/bootactions.sh?mac=52:54:00:00:0f:01", "", "", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, s.base+tt.url, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			if tt.header != "" {
				req.Header.Set("X-Slipway-Token", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tt.want)
			}
			if tt.want == 403 && !strings.Contains(string(body), "may not speak for 52:54:00:00:0f:01") {
				t.Fatalf("a refusal that does not say why: %s", body)
			}
		})
	}
	if events, _ := s.db.StageEvents(context.Background(), "52:54:00:00:0f:01"); len(events) != 3 {
		t.Fatalf("%d heartbeats kept, want the 3 that carried the token", len(events))
	}
	if len(asked) == 0 || !asked[0].Addr.IsLoopback() {
		t.Fatalf("the check was not told the caller's address: %+v", asked)
	}
}
