package wiring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/web"
)

// openRoutes are the routes anyone on the LAN may call: what netbooting
// machines and BMCs fetch, the probes, the console's files and the way in.
// A route answers a caller without credentials only if it is listed here.
var openRoutes = []string{
	"GET /", "GET /healthz", "GET /readyz", "GET /metrics",
	"GET /boot.ipxe", "GET /boot/*", "GET /assets/*", "GET /firmware/*",
	"GET /cloud-init/user-data", "GET /cloud-init/meta-data", "GET /cloud-init/vendor-data",
	"GET /cloud-init/network-config", "GET /cloud-init/bootactions.sh",
	"POST /heartbeat", "GET /clients", "GET /clients/:mac",
	"USE /console", "GET /console", "GET /console/*",
	"POST /api/v1/login", "GET /api/v1/version",
	"GET /versions", "GET /versions/", "GET /api/v1.0/health", // Drydock's, open as Airship's
}

// identity is one way a caller proves who they are.
type identity struct {
	role, scheme string
	set          func(*http.Request)
}

// Every route of the HTTP server, called by every role with every way of
// proving it (HTTP basic, a Bearer token, Keystone's X-Auth-Token, the
// console's cookie with its CSRF token) and by nobody: the answers are
// pinned in a golden file, and checked against three rules whatever the
// file says: only the open routes answer a caller without credentials; a
// mount answers every scheme it takes alike and refuses the others (401);
// a role never gets what a lower role is refused... the other way round:
// what a role may do, every higher role may.
func TestAuthorizationMatrix(t *testing.T) {
	users := []config.User{}
	for _, u := range []struct{ name, role string }{{"vic", "viewer"}, {"otto", "operator"}, {"ann", "admin"}} {
		h, err := bcrypt.GenerateFromPassword([]byte(u.name+"-password"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, config.User{Name: u.name, Role: u.role, PasswordHash: string(h)})
	}
	cfg := testConfigWith(t, t.TempDir(), DemoInventory{Users: users})
	a, urls, stop := startAppliance(t, cfg)
	defer stop()

	identities := []identity{{role: "anonymous", scheme: "none", set: func(*http.Request) {}}}
	for _, u := range users {
		// Two sessions: a logout by token must not end the cookie's.
		token, _ := loginForMatrix(t, urls.HTTP, u.Name)
		_, cookies := loginForMatrix(t, urls.HTTP, u.Name)
		name, password := u.Name, u.Name+"-password"
		identities = append(identities,
			identity{u.Role, "basic", func(r *http.Request) { r.SetBasicAuth(name, password) }},
			identity{u.Role, "bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }},
			identity{u.Role, "x-auth-token", func(r *http.Request) { r.Header.Set("X-Auth-Token", token) }},
			identity{u.Role, "cookie", func(r *http.Request) {
				for _, c := range cookies {
					r.AddCookie(c)
					if c.Name == web.CSRFCookie {
						r.Header.Set(web.CSRFHeader, c.Value)
					}
				}
			}})
	}

	routes := a.web.Load().Routes()
	// A logout ends the token later requests carry, and a login with no
	// password counts against the address (basic authentication is slowed
	// after five): both come last.
	last := func(r web.Route) int {
		switch {
		case strings.HasSuffix(r.Path, "/login"):
			return 2
		case strings.HasSuffix(r.Path, "/logout"):
			return 1
		}
		return 0
	}
	sort.SliceStable(routes, func(i, j int) bool {
		if li, lj := last(routes[i]), last(routes[j]); li != lj {
			return li < lj
		}
		return routes[i].Path+routes[i].Method < routes[j].Path+routes[j].Method
	})
	matrix := map[string]map[string]string{}
	for _, r := range routes {
		key := r.Method + " " + r.Path
		if _, seen := matrix[key]; seen {
			continue
		}
		row := map[string]string{}
		for _, id := range identities {
			row[id.role+"/"+id.scheme] = callForMatrix(t, urls.HTTP, r, id)
		}
		matrix[key] = row
		checkRow(t, key, row)
	}
	doc, err := json.Marshal(matrix)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "authz-matrix", doc)
}

// loginForMatrix logs user in and returns the token and the console's cookies.
func loginForMatrix(t *testing.T, base, user string) (string, []*http.Cookie) {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/login", "application/json", strings.NewReader(`{"username":"`+user+`","password":"`+user+`-password"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || s.Token == "" {
		t.Fatalf("login %s: %d %v", user, resp.StatusCode, err)
	}
	return s.Token, resp.Cookies()
}

// pathParam is a route's parameter or wildcard, filled with a name that
// matches nothing.
var pathParam = regexp.MustCompile(`:[A-Za-z_]+\??|\*`)

// callForMatrix calls r as id and returns the status, or "stream" for an
// answer that does not end (the event stream).
func callForMatrix(t *testing.T, base string, r web.Route, id identity) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var body io.Reader
	if r.Method != http.MethodGet && r.Method != http.MethodDelete {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, base+pathParam.ReplaceAllString(r.Path, "matrix-x"), body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	id.set(req)
	resp, err := noRedirects.Do(req)
	if errors.Is(err, context.DeadlineExceeded) {
		return "stream"
	}
	if err != nil {
		t.Fatalf("%s %s as %s/%s: %v", r.Method, r.Path, id.role, id.scheme, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); errors.Is(err, context.DeadlineExceeded) {
		return "stream"
	}
	return fmt.Sprint(resp.StatusCode)
}

// noRedirects answers a redirect as it is, not where it leads.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

var roleOrder = []string{"viewer", "operator", "admin"}

// checkRow applies the matrix's rules to one route.
func checkRow(t *testing.T, route string, row map[string]string) {
	t.Helper()
	open := slices.Contains(openRoutes, route)
	if anon := row["anonymous/none"]; anon != "401" && !open {
		t.Errorf("%s answers a caller without credentials %s: it is not an open route", route, anon)
	}
	if open {
		return
	}
	// Per role, the schemes the mount takes answer alike.
	for _, role := range roleOrder {
		taken := map[string]bool{}
		for _, scheme := range []string{"basic", "bearer", "x-auth-token", "cookie"} {
			if code := row[role+"/"+scheme]; code != "401" {
				taken[code] = true
			}
		}
		if len(taken) > 1 {
			t.Errorf("%s answers %s differently by how it proved who it is: %v", route, role, row)
		}
	}
	// What a role may do, a higher role may.
	for i, lower := range roleOrder {
		for _, higher := range roleOrder[i+1:] {
			for _, scheme := range []string{"basic", "bearer", "x-auth-token", "cookie"} {
				l, h := row[lower+"/"+scheme], row[higher+"/"+scheme]
				if l != "401" && l != "403" && h == "403" {
					t.Errorf("%s lets %s (%s) and refuses %s (403)", route, lower, l, higher)
				}
			}
		}
	}
}
