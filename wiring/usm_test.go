package wiring

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"os"
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

	dir := t.TempDir()
	archive := testkit.ReleaseArchive(t, dir, "slipway-os-2.0.0.tar.gz", testkit.ReleaseFiles("slipway-os-2.0.0", "2.0.0"))
	sig := signer.Sign(t, archive, archive+".asc")
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range []string{archive, sig} {
		w, _ := mw.CreateFormFile(p, p)
		data, _ := os.ReadFile(p)
		_, _ = w.Write(data)
	}
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, urls.USM+"/v1/release", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-Auth-Token", token)
	code, body := testkit.Do(t, req)
	if code != http.StatusOK || !strings.Contains(body, `"id":"slipway-os-2.0.0"`) {
		t.Fatalf("upload: %d %s", code, body)
	}
	req, _ = http.NewRequest(http.MethodGet, urls.USM+"/v1/release/slipway-os-2.0.0/is_available", nil)
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
