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
	"github.com/slipway/slipway/testbed/testkit"
)

// NICo's tray firmware API drives a real update: the emulated BMC of a
// compute tray takes the BMC image from the library, and the version it
// reports changes; the tray list shows it.
func TestNICoUpdatesATrayThroughItsBMC(t *testing.T) {
	const site = "6f1c2e8a-4b0d-4c47-9d1e-2a7f3c5b8e90"
	hash, _ := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	urls, machines, booted := startWithBMCFleetEdited(t, t.Context(), func(c *config.Config) { c.NICo.SiteID = site },
		config.User{Name: testUser, Role: "admin", PasswordHash: string(hash)})
	id := machines[0].ID
	api := func(method, path, body string) (int, string) {
		return testkit.Request(t, method, urls.HTTP+path, testUser, testPassword, body)
	}
	// The tray must be ready: it netboots and onboards once.
	if code, body := api(http.MethodPost, "/api/v1/machines/"+id+"/provision", `{}`); code != http.StatusAccepted {
		t.Fatalf("provision: %d %s", code, body)
	}
	if err := <-booted; err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the tray ready", func() bool {
		_, body := api(http.MethodGet, "/api/v1/machines/"+id, "")
		return strings.Contains(body, `"state":"ready"`)
	})
	for _, component := range []string{"BMC", "BIOS"} {
		image := []byte("FIRMWARE " + component + " 7.7.7\n" + strings.Repeat("bits", 512))
		sum := sha256.Sum256(image)
		uploadImage(t, urls.HTTP+"/api/v1/firmware?component="+component+"&version=7.7.7&sha256="+hex.EncodeToString(sum[:]), image)
	}

	_, body := api(http.MethodPost, "/api/v1/login", `{"username":"`+testUser+`","password":"`+testPassword+`"}`)
	var login struct{ Token string }
	if err := json.Unmarshal([]byte(body), &login); err != nil {
		t.Fatal(err)
	}
	nico := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, urls.HTTP+"/v2/org/acme/nico"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+login.Token)
		req.Header.Set("Content-Type", "application/json")
		return testkit.Do(t, req)
	}
	var patch struct {
		TaskIDs []string `json:"taskIds"`
	}
	var code int
	// The lifecycle's memory follows a commit a moment after a reader sees it.
	testkit.WaitFor(t, "the update accepted", func() bool {
		code, body = nico(http.MethodPatch, "/tray/firmware", `{"siteId":"`+site+`","filter":{"ids":["`+id+`"]},"targets":["bmc","bios"],"version":"7.7.7"}`)
		return code == http.StatusOK
	})
	// Two targets of one tray: two tasks of one batch, the second waiting
	// for the first to release the machine.
	if err := json.Unmarshal([]byte(body), &patch); err != nil || len(patch.TaskIDs) != 2 {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	for _, id := range patch.TaskIDs {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
			_, task := api(http.MethodGet, "/api/v1/tasks/"+id, "")
			if strings.Contains(task, `"status":"succeeded"`) {
				if !strings.Contains(task, `"batch":"`) {
					t.Errorf("the task has no batch: %s", task)
				}
				break
			}
			if strings.Contains(task, `"status":"failed"`) || time.Now().After(deadline) {
				t.Fatalf("the update: %s", task)
			}
		}
	}
	testkit.WaitFor(t, "the tray list to show the new version", func() bool {
		_, trays := nico(http.MethodGet, "/tray?ids="+id, "")
		return strings.Contains(trays, `"firmwareVersion":"7.7.7"`)
	})
}
