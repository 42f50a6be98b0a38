package usm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/slipway/slipway/appliance/auth"
	"github.com/slipway/slipway/appliance/release"
	"github.com/slipway/slipway/testbed/testkit"
	"github.com/slipway/slipway/web"
)

// box is USM's API over a real release library that trusts one gpg key,
// and a token per role.
type box struct {
	url    string
	lib    *release.Library
	signer *testkit.Signer
	tokens map[string]string
	files  string
}

func serve(t *testing.T, maxSize int64) *box {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, commit := testkit.OpenStore(t)
	a, err := auth.New(context.Background(), auth.Config{DB: db, Commit: commit, KeyFile: filepath.Join(t.TempDir(), "k"), Log: quiet, HashCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	b := &box{signer: testkit.NewSigner(t, "usm"), tokens: map[string]string{}, files: t.TempDir()}
	for name, role := range map[string]string{"ann": auth.Admin, "otto": auth.Operator, "vic": auth.Viewer} {
		if _, err := a.AddUser(context.Background(), name, role, name+"-password"); err != nil {
			t.Fatal(err)
		}
		s, err := a.Login(context.Background(), name, name+"-password", "test")
		if err != nil {
			t.Fatal(err)
		}
		b.tokens[role] = s.Token
	}
	keys, err := release.LoadKeyring([]string{b.signer.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	if b.lib, err = release.NewLibrary(release.Config{Dir: filepath.Join(data, "releases"), Staging: filepath.Join(data, ".incoming"),
		DB: db, Commit: commit, Keys: keys, MaxSize: maxSize, Log: quiet}); err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Config{Addr: netip.MustParseAddr("127.0.0.1"), Logger: quiet}, New(Services{Auth: a, Releases: b.lib, Log: quiet})...)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	b.url = "http://" + srv.Addr().String()
	return b
}

// call sends what StarlingX's software CLI sends: the token, JSON content
// type and accept on every request.
func (b *box) call(t *testing.T, method, path, token string, body io.Reader, contentType string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, b.url+path, body)
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	return testkit.Do(t, req)
}

// release makes a signed release archive; it returns the archive's and the
// signature's paths.
func (b *box) release(t *testing.T, id, version string) (string, string) {
	t.Helper()
	p := testkit.ReleaseArchive(t, b.files, id+".tar.gz", testkit.ReleaseFiles(id, version))
	return p, b.signer.Sign(t, p, p+".sig")
}

// multipartOf is the CLI's upload: one part per file, named by its path.
func multipartOf(t *testing.T, paths ...string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range paths {
		w, err := mw.CreateFormFile(p, p)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(data)
	}
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

func TestRootAndAuth(t *testing.T) {
	b := serve(t, 1<<20)
	code, body := b.call(t, "GET", "/", "", nil, "application/json")
	if code != 200 || !strings.Contains(body, `"name":"StarlingX USM API"`) || !strings.Contains(body, `"default_version":{"id":"v1"`) {
		t.Errorf("root: %d %s", code, body)
	}
	keystone401 := `{"error":{"code":401,"message":"The request you have made requires authentication.","title":"Unauthorized"}}`
	for _, tc := range []struct {
		name, method, path, token string
		code                      int
		body                      string
	}{
		{"no token", "GET", "/v1/release", "", 401, keystone401},
		{"not a token", "GET", "/v1/release", "nope", 401, keystone401},
		{"a viewer reads", "GET", "/v1/release", b.tokens[auth.Viewer], 200, `[]`},
		{"a viewer cannot write", "DELETE", "/v1/release/x", b.tokens[auth.Viewer], 403, `{"error":"Not allowed, role operator or admin is needed","info":"","warning":""}`},
		{"an operator writes", "DELETE", "/v1/release/x", b.tokens[auth.Operator], 406, `{"error":"Release x can not be found","info":"","warning":""}`},
		{"no such endpoint", "GET", "/v1/nope", b.tokens[auth.Viewer], 404, `{"error":"Not Found: The resource could not be found.","info":"","warning":""}`},
		{"no such release", "GET", "/v1/release/nope", b.tokens[auth.Viewer], 404, `{"error":"Release nope not found","info":"","warning":""}`},
		{"an unknown release is not available", "GET", "/v1/release/nope/is_available", b.tokens[auth.Viewer], 200, `false`},
		{"an upload of nothing", "POST", "/v1/release", b.tokens[auth.Admin], 406, `"error":"No files uploaded"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := b.call(t, tc.method, tc.path, tc.token, strings.NewReader(""), "application/json")
			if code != tc.code || !strings.Contains(body, tc.body) {
				t.Errorf("%d %s, want %d %s", code, body, tc.code, tc.body)
			}
		})
	}
}

// The CLI's upload (multipart, parts named by path) and --local upload
// (text/plain, a JSON list of paths), then list, show, the presence checks
// and delete, with the keys the CLI's tables read.
func TestReleaseLifecycleAsTheCLIDrivesIt(t *testing.T) {
	b := serve(t, 1<<20)
	admin := b.tokens[auth.Admin]
	archive, sig := b.release(t, "slipway-os-1.2.0", "1.2.0")
	body, ct := multipartOf(t, archive, sig)
	code, answer := b.call(t, "POST", "/v1/release", admin, body, ct)
	if code != 200 {
		t.Fatalf("upload: %d %s", code, answer)
	}
	var up struct {
		Info, Warning, Error string
		UploadInfo           []map[string]struct {
			ID        *string `json:"id"`
			SWRelease *string `json:"sw_release"`
		} `json:"upload_info"`
	}
	if err := json.Unmarshal([]byte(answer), &up); err != nil || up.Error != "" || len(up.UploadInfo) != 2 {
		t.Fatalf("upload answer %s: %v", answer, err)
	}
	entries := map[string]struct{ id, version *string }{}
	for _, e := range up.UploadInfo {
		for file, info := range e {
			entries[file] = struct{ id, version *string }{info.ID, info.SWRelease}
		}
	}
	if got := entries["slipway-os-1.2.0.tar.gz"]; got.id == nil || *got.id != "slipway-os-1.2.0" || *got.version != "1.2.0" {
		t.Errorf("upload_info %s", answer)
	}
	if got, ok := entries["slipway-os-1.2.0.tar.gz.sig"]; !ok || got.id != nil || got.version != nil {
		t.Errorf("a signature's upload_info %s", answer)
	}
	// --local: paths on the box, as text/plain.
	local, localSig := b.release(t, "slipway-os-1.3.0", "1.3.0")
	paths, _ := json.Marshal([]string{local, localSig})
	if code, answer := b.call(t, "POST", "/v1/upload", admin, bytes.NewReader(paths), "text/plain"); code != 200 || !strings.Contains(answer, `"sw_release":"1.3.0"`) {
		t.Fatalf("local upload: %d %s", code, answer)
	}
	missing, _ := json.Marshal([]string{"/nowhere/x.patch", local})
	if code, answer := b.call(t, "POST", "/v1/release", admin, bytes.NewReader(missing), "text/plain"); code != 406 ||
		!strings.Contains(answer, `"error":"File(s) not found on the active controller: /nowhere/x.patch"`) {
		t.Errorf("a local file missing: %d %s", code, answer)
	}
	// An unsigned release is refused with USM's 406, and kept nowhere.
	unsigned := testkit.ReleaseArchive(t, b.files, "unsigned.tar.gz", testkit.ReleaseFiles("unsigned", "9.0.0"))
	body, ct = multipartOf(t, unsigned)
	if code, answer := b.call(t, "POST", "/v1/release", admin, body, ct); code != 406 || !strings.Contains(answer, "no detached signature") {
		t.Errorf("unsigned: %d %s", code, answer)
	}

	code, list := b.call(t, "GET", "/v1/release", b.tokens[auth.Viewer], nil, "application/json")
	var rels []map[string]any
	if err := json.Unmarshal([]byte(list), &rels); err != nil || code != 200 || len(rels) != 2 {
		t.Fatalf("list: %d %s", code, list)
	}
	for _, key := range []string{"release_id", "state", "sw_version", "component", "status", "unremovable", "summary", "description",
		"install_instructions", "warnings", "reboot_required", "prepatched_iso", "preinstalled_patches", "requires", "packages", "activation_scripts"} {
		if _, ok := rels[0][key]; !ok {
			t.Errorf("a listed release has no %q: %v", key, rels[0])
		}
	}
	if rels[0]["release_id"] != "slipway-os-1.2.0" || rels[0]["state"] != "available" || rels[0]["unremovable"] != false || rels[0]["component"] != nil {
		t.Errorf("listed %v", rels[0])
	}
	for path, want := range map[string]string{
		"/v1/release?show=available":                                 `"release_id":"slipway-os-1.3.0"`,
		"/v1/release?show=deployed":                                  `[]`,
		"/v1/release?release=1.3":                                    `"release_id":"slipway-os-1.3.0"`,
		"/v1/release/slipway-os-1.2.0":                               `"summary":"slipway-os-1.2.0"`,
		"/v1/release/slipway-os-1.2.0/is_available":                  `true`,
		"/v1/release/slipway-os-1.2.0/slipway-os-1.3.0/is_available": `true`,
		"/v1/release/slipway-os-1.2.0/is_deployed":                   `false`,
		"/v1/release/slipway-os-1.2.0/is_committed":                  `false`,
	} {
		if code, got := b.call(t, "GET", path, b.tokens[auth.Viewer], nil, "application/json"); code != 200 || !strings.Contains(got, want) {
			t.Errorf("GET %s: %d %s, want %s", path, code, got, want)
		}
	}
	if code, got := b.call(t, "GET", "/v1/release?release=1.3", b.tokens[auth.Viewer], nil, "application/json"); strings.Contains(got, "1.2.0") {
		t.Errorf("release=1.3 lists 1.2: %d %s", code, got)
	}
	if code, got := b.call(t, "DELETE", "/v1/release/slipway-os-1.2.0/slipway-os-1.3.0", b.tokens[auth.Operator], nil, "application/json"); code != 200 ||
		got != `{"error":"","info":"slipway-os-1.2.0 has been deleted\nslipway-os-1.3.0 has been deleted\n","warning":""}` {
		t.Errorf("delete: %d %s", code, got)
	}
}

// An upload larger than usm.max_upload_mib is refused, and nothing stays.
func TestOversizeUploadOverHTTP(t *testing.T) {
	b := serve(t, 200)
	archive, sig := b.release(t, "big", "1.0.0")
	body, ct := multipartOf(t, archive, sig)
	code, answer := b.call(t, "POST", "/v1/release", b.tokens[auth.Admin], body, ct)
	if code != 406 || !strings.Contains(answer, "big.tar.gz is larger than the 200 bytes usm.max_upload_mib allows") {
		t.Errorf("%d %s", code, answer)
	}
	if entries, _ := os.ReadDir(filepath.Dir(b.lib.Dir()) + "/.incoming"); len(entries) != 0 {
		t.Errorf("staged files left: %v", entries)
	}
}

// httplib2 sends header names in lower case: the token is found all the
// same.
func TestLowerCaseHeaders(t *testing.T) {
	b := serve(t, 1<<20)
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /v1/release HTTP/1.1\r\nhost: usm\r\nx-auth-token: "+b.tokens[auth.Viewer]+
		"\r\ncontent-type: application/json\r\naccept: application/json\r\nconnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(out) != "[]" {
		t.Errorf("%d %s", resp.StatusCode, out)
	}
}
