package wiring

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The console and the APIs are served over TLS with the self-made
// certificate whose fingerprint the appliance announces; the console on
// plain HTTP sends the browser there, and a login over TLS sets Secure
// cookies; the APIs stay on plain HTTP too (https.plain_api) unless told
// otherwise.
func TestConsoleAndAPIOverTLS(t *testing.T) {
	for _, plainAPI := range []bool{true, false} {
		cfg := testConfig(t, t.TempDir())
		cfg.HTTPS.PlainAPI = plainAPI
		urls, stop := runUntilReady(t, cfg)
		pem, err := os.ReadFile(filepath.Join(cfg.TLSDir(), "tls.crt"))
		if err != nil || urls.HTTPS == "" || len(urls.Fingerprint) != 95 {
			t.Fatalf("no self-made certificate or no https URL (%v): %+v", err, urls)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		do := func(method, url, body string) *http.Response {
			t.Helper()
			req, _ := http.NewRequest(method, url, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, url, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp
		}
		resp, err := client.Get(urls.HTTPS + "/api/v1/version")
		if err != nil {
			t.Fatal(err)
		}
		var version struct {
			Fingerprint string `json:"tls_fingerprint"`
		}
		json.NewDecoder(resp.Body).Decode(&version)
		resp.Body.Close()
		if version.Fingerprint != urls.Fingerprint || resp.TLS == nil {
			t.Fatalf("/version shows %q, the announced fingerprint is %q", version.Fingerprint, urls.Fingerprint)
		}
		if r := do("GET", urls.HTTP+"/console/", ""); r.StatusCode != 308 || r.Header.Get("Location") != urls.HTTPS+"/console/" {
			t.Fatalf("the console on plain HTTP: %d %s", r.StatusCode, r.Header.Get("Location"))
		}
		if r := do("GET", urls.HTTPS+"/console/", ""); r.StatusCode != 200 {
			t.Fatalf("the console over TLS: %d", r.StatusCode)
		}
		login := do("POST", urls.HTTPS+"/api/v1/login", `{"username":"`+testUser+`","password":"`+testPassword+`"}`)
		if login.StatusCode != 200 || len(login.Cookies()) == 0 {
			t.Fatalf("login over TLS: %d", login.StatusCode)
		}
		for _, c := range login.Cookies() {
			if !c.Secure {
				t.Errorf("cookie %s set over TLS is not Secure", c.Name)
			}
		}
		plainLogin := do("POST", urls.HTTP+"/api/v1/login", `{"username":"`+testUser+`","password":"`+testPassword+`"}`)
		if want := map[bool]int{true: 200, false: 403}[plainAPI]; plainLogin.StatusCode != want {
			t.Errorf("plain_api %v: a login on plain HTTP got %d, want %d", plainAPI, plainLogin.StatusCode, want)
		}
		// What nodes fetch stays on plain HTTP either way.
		if r := do("GET", urls.HTTP+"/healthz", ""); r.StatusCode != 200 {
			t.Errorf("plain_api %v: /healthz on plain HTTP: %d", plainAPI, r.StatusCode)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// usm.tls has USM's port speak TLS with the same certificate, as a
// StarlingX controller's does in HTTPS mode; nothing plain answers there.
func TestUSMOverTLS(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.USM.TLS = true
	urls, stop := runUntilReady(t, cfg)
	defer stop()
	if !strings.HasPrefix(urls.USM, "https://") {
		t.Fatalf("USM announced at %s", urls.USM)
	}
	pem, err := os.ReadFile(filepath.Join(cfg.TLSDir(), "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(urls.USM + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "StarlingX USM API") {
		t.Fatalf("USM's root over TLS: %d %s", resp.StatusCode, body)
	}
	if resp, err := http.Get("http://" + strings.TrimPrefix(urls.USM, "https://") + "/"); err == nil && resp.StatusCode == 200 {
		t.Fatal("USM's port answered plain HTTP too")
	}
}
