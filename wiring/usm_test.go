package wiring

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/slipway/slipway/testbed/testkit"
)

// A release uploaded through USM's port, signed with gpg, is listed there
// and its boot files are served to the hosts from the main HTTP port.
func TestUSMUploadServesTheReleasesBootFiles(t *testing.T) {
	signer := testkit.NewSigner(t, "site-releases")
	cfg := testConfigWith(t, t.TempDir(), DemoInventory{})
	cfg.USM.TrustedKeys = []string{signer.PublicKey}
	urls, stop := runUntilReady(t, cfg)
	defer stop()
	if urls.USM == "" {
		t.Fatal("no USM URL announced")
	}
	token := loginToken(t, urls.HTTP)

	code, body := uploadRelease(t, urls.USM, token, signer, "slipway-os-2.0.0", "2.0.0")
	if code != http.StatusOK || !strings.Contains(body, `"id":"slipway-os-2.0.0"`) {
		t.Fatalf("upload: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodGet, urls.USM+"/v1/release/slipway-os-2.0.0/is_available", nil)
	req.Header.Set("X-Auth-Token", token)
	if code, body := testkit.Do(t, req); code != http.StatusOK || body != "true" {
		t.Errorf("is_available: %d %s", code, body)
	}
	resp, err := http.Get(urls.HTTP + "/assets/releases/slipway-os-2.0.0/boot/vmlinuz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	kernel, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(kernel, []byte("kernel of slipway-os-2.0.0")) {
		t.Errorf("the release's kernel over HTTP: %d %q", resp.StatusCode, kernel[:min(len(kernel), 40)])
	}
}
