package wiring

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/testbed/testkit"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/golden from what the code answers now")

// The JSON of every native endpoint and every MQTT payload is pinned by a
// golden file, so that a change of shape (a field renamed, dropped or
// retyped, by a migration or a refactor) fails here. A machine is
// provisioned through its emulated BMC, onboards, and has its BMC
// firmware updated; then every endpoint is read and the bus's retained
// messages collected. Values that differ from run to run (times, ids,
// ports) are replaced by placeholders and every list is cut to its first
// element: the golden files pin shapes and formats, other tests pin values.
// After an intended change: go test -run TestNativeContractsAreGolden -update ./<package>/
func TestNativeContractsAreGolden(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	urls, machines, booted := startWithBMCFleet(t, t.Context(), config.User{Name: testUser, Role: "admin", PasswordHash: string(hash)})
	id, mac := machines[0].ID, machines[0].MACs[0]
	api := func(method, path, body string) string {
		t.Helper()
		code, out := testkit.Request(t, method, urls.HTTP+path, testUser, testPassword, body)
		if code >= 300 {
			t.Fatalf("%s %s = %d %s", method, path, code, out)
		}
		return out
	}
	answers := map[string]string{}
	waitFor := func(what, path, want string) {
		testkit.WaitFor(t, what, func() bool { return strings.Contains(api(http.MethodGet, path, ""), want) })
	}
	waitFor("the BMC polled", "/api/v1/bmcs", `"reachable":true`)
	answers["provision"] = api(http.MethodPost, "/api/v1/machines/"+id+"/provision", `{}`)
	select {
	case err := <-booted:
		if err != nil {
			t.Fatalf("netboot: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the machine never netbooted")
	}
	waitFor("the machine ready", "/api/v1/machines/"+id, `"state":"ready"`)

	image := []byte("FIRMWARE BMC 9.9.9\n" + strings.Repeat("firmware bytes ", 256))
	sum := sha256.Sum256(image)
	answers["firmware-upload"] = uploadImage(t, urls.HTTP+"/api/v1/firmware?component=BMC&version=9.9.9&filename=bmc.bin&sha256="+hex.EncodeToString(sum[:]), image)
	var uploaded struct {
		ID string `json:"image_id"`
	}
	if err := json.Unmarshal([]byte(answers["firmware-upload"]), &uploaded); err != nil {
		t.Fatal(err)
	}
	// The lifecycle's memory follows a commit a moment after a reader of
	// the store can see it: a 409 right after "ready" is asked again.
	testkit.WaitFor(t, "the firmware update accepted", func() bool {
		code, out := testkit.Request(t, http.MethodPost, urls.HTTP+"/api/v1/machines/"+id+"/firmware", testUser, testPassword, `{"image_id":"`+uploaded.ID+`"}`)
		answers["firmware-update"] = out
		return code == http.StatusAccepted
	})
	var task struct {
		ID string `json:"task_id"`
	}
	if err := json.Unmarshal([]byte(answers["firmware-update"]), &task); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); !strings.Contains(api(http.MethodGet, "/api/v1/tasks/"+task.ID, ""), `"status":"succeeded"`); {
		if time.Now().After(deadline) {
			t.Fatalf("the update did not succeed: %s", api(http.MethodGet, "/api/v1/tasks/"+task.ID, ""))
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitFor("the machine ready again", "/api/v1/machines/"+id, `"state":"ready"`)

	bmcID := strings.TrimPrefix(regexp.MustCompile(`"bmc_id":"([^"]+)"`).FindString(api(http.MethodGet, "/api/v1/bmcs", "")), `"bmc_id":"`)
	bmcID = strings.TrimSuffix(bmcID, `"`)
	for name, path := range map[string]string{
		"machines": "/api/v1/machines", "machine": "/api/v1/machines/" + id, "bmcs": "/api/v1/bmcs", "bmc": "/api/v1/bmcs/" + bmcID,
		"firmware": "/api/v1/firmware", "tasks": "/api/v1/tasks", "task": "/api/v1/tasks/" + task.ID, "overview": "/api/v1/overview",
		"leases": "/api/v1/leases", "users": "/api/v1/users", "me": "/api/v1/me", "version": "/api/v1/version",
		"clients": "/clients", "client": "/clients/" + mac, "settings": "/api/v1/settings",
	} {
		answers[name] = api(http.MethodGet, path, "")
	}
	// The writes' answers too (after the reads, which they would change).
	answers["login"] = api(http.MethodPost, "/api/v1/login", `{"username":"`+testUser+`","password":"`+testPassword+`"}`)
	answers["user-added"] = api(http.MethodPost, "/api/v1/users", `{"name":"vera","role":"viewer","password":"vera-password-1"}`)
	answers["power"] = api(http.MethodPost, "/api/v1/bmcs/"+bmcID+"/power", `{"action":"on"}`)
	code, refused := testkit.Request(t, http.MethodPost, urls.HTTP+"/api/v1/tasks/"+task.ID+"/cancel", testUser, testPassword, "")
	if code != http.StatusConflict {
		t.Fatalf("cancel a finished task: %d %s", code, refused)
	}
	answers["error"] = refused
	for name, body := range answers {
		checkGolden(t, "http-"+name, []byte(body))
	}

	bus := subscribe(t, "tcp://"+strings.TrimPrefix(urls.MQTT, "mqtt://"), "#")
	kinds := map[string]string{"NICO/v1/machine/+/state": "mqtt-machine-state", "slipway/v1/machine/+/onboarding": "mqtt-onboarding",
		"slipway/v1/bmc/+/state": "mqtt-bmc-state", "slipway/v1/task/+": "mqtt-task"}
	seen := map[string]bool{}
	for len(seen) < len(kinds) {
		select {
		case m := <-bus:
			for filter, name := range kinds {
				if topicMatches(filter, m.Topic()) && !seen[name] {
					seen[name] = true
					checkGolden(t, name, m.Payload())
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("retained messages seen: %v; want one of each of %v", seen, kinds)
		}
	}
	// Last: it clears the retained onboarding message read above.
	checkGolden(t, "http-heartbeats-reset", []byte(api(http.MethodDelete, "/api/v1/machines/"+id+"/heartbeats", "")))
}

func uploadImage(t *testing.T, url string, image []byte) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(image))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(testUser, testPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	return string(body)
}

func topicMatches(filter, topic string) bool {
	f, p := strings.Split(filter, "/"), strings.Split(topic, "/")
	if len(f) != len(p) {
		return false
	}
	for i := range f {
		if f[i] != "+" && f[i] != p[i] {
			return false
		}
	}
	return true
}

// checkGolden compares a JSON document, made run-independent, with
// testdata/golden/<name>.json (or writes it there with -update).
func checkGolden(t *testing.T, name string, doc []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("%s is not JSON: %v: %s", name, err, doc)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(stable(v)); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", "golden", name+".json")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed shape; if that is intended, rerun with -update and review the diff.\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

var (
	rfc3339 = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$`)
	uuidish = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	sha     = regexp.MustCompile(`[0-9a-f]{64}`)
	port    = regexp.MustCompile(`127\.0\.0\.1([:-])\d+`)
	jwtish  = regexp.MustCompile(`^eyJ[\w-]+\.[\w-]+\.[\w-]+$`)
	token   = regexp.MustCompile(`^[0-9a-f]{32}$`)
	tmpPath = regexp.MustCompile(`/tmp/[^\s"',}\]]+`)
	cfgPort = regexp.MustCompile(`(port: )\d+`) // in the settings' YAML
	elapsed = regexp.MustCompile(`\b\d+(\.\d+)?(ms|s|µs)\b`)
	pyTime  = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$`) // Drydock's
	ulid    = regexp.MustCompile(`\b[0-9A-HJKMNP-TV-Z]{26}\b`)
	// Leases: which machine gets which address depends on who asks first.
	leaseIP = regexp.MustCompile(`^127\.0\.1\.\d+$`)
	// A certificate's fingerprint, as browsers show it.
	fingerprint = regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`)
)

// opaque are fields whose value is a document of its own (build data):
// its shape is its generator's business, not the API's.
var opaque = map[string]bool{"data_element": true, "data": true}

// polledVersions are values a BMC poll may or may not have refreshed yet.
var polledVersions = map[string]bool{"bmc_version": true}

// stable replaces what differs from run to run and cuts lists to their
// first element. Numbers become 0: their type is the contract, their
// values (sequence numbers, counts) are other tests' business.
func stable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		// Keys that are ids (Drydock's subtask_errors) are placeholders too.
		for k, v := range x {
			if uuidish.MatchString(k) {
				delete(x, k)
				x[uuidish.ReplaceAllString(k, "<uuid>")] = v
			}
		}
		for k := range x {
			if polledVersions[k] {
				x[k] = "<version>"
				continue
			}
			if _, isString := x[k].(string); isString && opaque[k] {
				x[k] = "<document>"
				continue
			}
			x[k] = stable(x[k])
		}
		return x
	case float64:
		return 0
	case []any:
		if len(x) > 1 {
			x = x[:1]
		}
		for i := range x {
			x[i] = stable(x[i])
		}
		return x
	case string:
		switch {
		case rfc3339.MatchString(x), pyTime.MatchString(x):
			return "<time>"
		case jwtish.MatchString(x):
			return "<jwt>"
		case leaseIP.MatchString(x):
			return "<lease ip>"
		case token.MatchString(x):
			return "<token>"
		case fingerprint.MatchString(x):
			return "<fingerprint>"
		}
		x = tmpPath.ReplaceAllString(x, "<tmp>")
		x = cfgPort.ReplaceAllString(x, "${1}<port>")
		x = uuidish.ReplaceAllString(x, "<uuid>")
		x = ulid.ReplaceAllString(x, "<ulid>")
		x = sha.ReplaceAllString(x, "<sha256>")
		x = port.ReplaceAllString(x, "127.0.0.1$1<port>")
		return elapsed.ReplaceAllString(x, "<duration>")
	default:
		return v
	}
}
