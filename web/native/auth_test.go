package native

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/slipway/slipway/web"
)

type apiClient struct {
	t      *testing.T
	base   string
	http   *http.Client
	bearer string
	csrf   string
}

func (c *apiClient) do(method, path, body string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.csrf != "" {
		req.Header.Set(web.CSRFHeader, c.csrf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (c *apiClient) login(user, password string) sessionJSON {
	c.t.Helper()
	code, body := c.do("POST", "/api/v1/login", `{"username":"`+user+`","password":"`+password+`"}`)
	var s sessionJSON
	if code != 200 || json.Unmarshal([]byte(body), &s) != nil {
		c.t.Fatalf("login %s: %d %s", user, code, body)
	}
	return s
}

func startAuthServer(t *testing.T) string {
	t.Helper()
	s, err := newTestServer(Services{Auth: testAuth(t), Machines: emptyMachines(t)})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return "http://" + s.Addr().String()
}

func newClient(t *testing.T, base string) *apiClient {
	jar, _ := cookiejar.New(nil)
	return &apiClient{t: t, base: base, http: &http.Client{Jar: jar}}
}

// The console's way in: login sets an HttpOnly session cookie and a CSRF
// cookie; reads ride on the cookie, writes must echo the CSRF token;
// logout ends the session for good.
func TestCookieSessionsNeedTheCSRFTokenToWrite(t *testing.T) {
	base := startAuthServer(t)
	c := newClient(t, base)
	s := c.login("ann", "ann-password")
	u, _ := url.Parse(base)
	var session *http.Cookie
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == web.SessionCookie {
			session = ck
		}
	}
	if session == nil || s.CSRF == "" || s.Role != "admin" || strings.Join(s.Roles, ",") != "admin,SLIPWAY_PROVIDER_ADMIN" {
		t.Fatalf("login: %+v, cookie %v", s, session)
	}
	if code, body := c.do("GET", "/api/v1/me", ""); code != 200 || !strings.Contains(body, `"user":"ann"`) {
		t.Fatalf("me by cookie: %d %s", code, body)
	}
	if code, body := c.do("POST", "/api/v1/users", `{"name":"eve","role":"viewer","password":"eve-password"}`); code != 403 || !strings.Contains(body, web.CSRFHeader) {
		t.Errorf("cookie write without CSRF: %d %s", code, body)
	}
	c.csrf = s.CSRF
	if code, body := c.do("POST", "/api/v1/users", `{"name":"eve","role":"viewer","password":"eve-password"}`); code != 201 {
		t.Errorf("cookie write with CSRF: %d %s", code, body)
	}
	if code, _ := c.do("POST", "/api/v1/logout", ""); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	// The token taken from before the logout is refused, however sent.
	after := newClient(t, base)
	after.bearer = s.Token
	if code, _ := after.do("GET", "/api/v1/me", ""); code != 401 {
		t.Errorf("revoked token: %d", code)
	}
}

func TestBearerTokensRolesAndUsers(t *testing.T) {
	base := startAuthServer(t)
	admin, viewer, anon := newClient(t, base), newClient(t, base), newClient(t, base)
	admin.bearer = admin.login("ann", "ann-password").Token
	viewer.bearer = viewer.login("vic", "vic-password").Token
	tests := []struct {
		name, method, path, body string
		as                       *apiClient
		status                   int
		want                     string
	}{
		{"anonymous read", "GET", "/api/v1/machines", "", anon, 401, "log in"},
		{"version is open", "GET", "/api/v1/version", "", anon, 200, "version"},
		{"viewer reads", "GET", "/api/v1/machines", "", viewer, 200, `"machines":[]`},
		{"viewer may not add users", "POST", "/api/v1/users", `{"name":"x","role":"viewer","password":"long-password"}`, viewer, 403, "needs admin"},
		{"viewer may not list users", "GET", "/api/v1/users", "", viewer, 403, "needs admin"},
		{"admin lists users", "GET", "/api/v1/users", "", admin, 200, `"name":"otto"`},
		{"password hashes never shown", "GET", "/api/v1/users", "", admin, 200, `"role":"viewer"`},
		{"short password", "POST", "/api/v1/users", `{"name":"x","role":"viewer","password":"short"}`, admin, 400, "shorter than"},
		{"name taken", "POST", "/api/v1/users", `{"name":"otto","role":"viewer","password":"long-password"}`, admin, 409, "taken"},
		{"viewer may not list sessions", "GET", "/api/v1/sessions", "", viewer, 403, "needs admin"},
		{"admin lists sessions, its own marked", "GET", "/api/v1/sessions", "", admin, 200, `"user":"ann","client":"127.0.0.1"`},
		{"viewer may not end sessions", "DELETE", "/api/v1/sessions/whatever", "", viewer, 403, "needs admin"},
		{"end an unknown session", "DELETE", "/api/v1/sessions/no-such-session", "", admin, 404, "no such session"},
		{"viewer may not change another's", "PUT", "/api/v1/users/otto/password", `{"password":"new-otto-password"}`, viewer, 403, "only an admin"},
		{"viewer changes own password", "PUT", "/api/v1/users/vic/password", `{"password":"new-vic-password"}`, viewer, 204, ""},
		{"which ends the viewer's sessions", "GET", "/api/v1/me", "", viewer, 401, "log in again"},
		{"delete unknown user", "DELETE", "/api/v1/users/nobody", "", admin, 404, "not found"},
		{"delete user", "DELETE", "/api/v1/users/otto", "", admin, 204, ""},
		{"bad token", "GET", "/api/v1/me", "", &apiClient{t: t, base: base, http: http.DefaultClient, bearer: "x.y.z"}, 401, "log in again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.as.t = t
			code, body := tt.as.do(tt.method, tt.path, tt.body)
			if code != tt.status || !strings.Contains(body, tt.want) || strings.Contains(body, "$2a$") {
				t.Errorf("%d %s, want %d with %q", code, body, tt.status, tt.want)
			}
		})
	}
}

func TestGuessingPasswordsIsSlowedDown(t *testing.T) {
	base := startAuthServer(t)
	c := newClient(t, base)
	var code int
	var resp *http.Response
	for range 7 {
		req, _ := http.NewRequest("POST", base+"/api/v1/login", strings.NewReader(`{"username":"ann","password":"guess"}`))
		var err error
		if resp, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		code = resp.StatusCode
	}
	if code != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("after 7 guesses: %d, Retry-After %q", code, resp.Header.Get("Retry-After"))
	}
	if code, _ := c.do("POST", "/api/v1/login", `{"username":"ann","password":"ann-password"}`); code != http.StatusTooManyRequests {
		t.Errorf("the right password while blocked: %d", code)
	}
}

// The console changing its user's password gets a new session in the
// answer: the change ends every session the user had, the old cookie's too.
func TestAPasswordChangeKeepsTheConsoleThatMadeIt(t *testing.T) {
	base := startAuthServer(t)
	c := newClient(t, base)
	s := c.login("vic", "vic-password")
	c.csrf = s.CSRF
	if code, body := c.do("PUT", "/api/v1/users/vic/password", `{"password":"new-vic-password"}`); code != 204 {
		t.Fatalf("change: %d %s", code, body)
	}
	u, _ := url.Parse(base)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == web.CSRFCookie {
			c.csrf = ck.Value
		}
	}
	if code, body := c.do("GET", "/api/v1/me", ""); code != 200 || !strings.Contains(body, `"user":"vic"`) {
		t.Errorf("the console after its change: %d %s", code, body)
	}
	if code, _ := c.do("POST", "/api/v1/logout", ""); code != 204 {
		t.Errorf("a write with the new CSRF cookie: %d", code)
	}
	old := newClient(t, base)
	old.bearer = s.Token
	if code, _ := old.do("GET", "/api/v1/me", ""); code != 401 {
		t.Errorf("the session from before the change: %d", code)
	}
}

// An admin ends another user's session from the list; that user's token
// is refused at once, the admin's own goes on.
func TestAdminEndsASession(t *testing.T) {
	base := startAuthServer(t)
	admin, viewer := newClient(t, base), newClient(t, base)
	admin.bearer = admin.login("ann", "ann-password").Token
	viewer.bearer = viewer.login("vic", "vic-password").Token
	code, body := admin.do("GET", "/api/v1/sessions", "")
	var list struct {
		Sessions []sessionInfoJSON `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil {
		t.Fatalf("sessions: %d %s", code, body)
	}
	var vic string
	for _, s := range list.Sessions {
		if s.User == "vic" {
			vic = s.ID
		}
		if s.User == "ann" && !s.Current {
			t.Errorf("the admin's own session is not marked current: %+v", s)
		}
	}
	if vic == "" {
		t.Fatalf("vic's session is not listed: %s", body)
	}
	if code, body := admin.do("DELETE", "/api/v1/sessions/"+vic, ""); code != 204 {
		t.Fatalf("end vic's session: %d %s", code, body)
	}
	if code, _ := viewer.do("GET", "/api/v1/me", ""); code != 401 {
		t.Fatalf("an ended session: %d", code)
	}
	if code, _ := admin.do("GET", "/api/v1/me", ""); code != 200 {
		t.Fatalf("the admin's own session: %d", code)
	}
}
