package wiring

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed/testkit"
)

// A first start with no admin configured prints a one-time admin
// password; logged in with it, one may only change it, then all is open.
func TestFirstStartOneTimeAdminPassword(t *testing.T) {
	cfg, err := DemoConfig(t.TempDir(), testPorts(t), DemoInventory{}, "console=ttyS0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready, oneTime := make(chan URLs, 1), make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- New(cfg, Options{Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			OnReady: func(u URLs) { ready <- u }, OnFirstAdmin: func(pw string) { oneTime <- pw }}).Run(ctx)
	}()
	var urls URLs
	var pw string
	select {
	case urls = <-ready:
		pw = <-oneTime
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	send := func(method, path, body string) (int, string) {
		return testkit.Request(t, method, urls.HTTP+path, "admin", pw, body)
	}
	if code, body := send("GET", "/api/v1/machines", ""); code != 403 || !strings.Contains(body, "change your one-time password first") {
		t.Errorf("with the one-time password: %d %s", code, body)
	}
	if code, body := send("PUT", "/api/v1/users/admin/password", `{"password":"a-password-of-mine"}`); code != 204 {
		t.Fatalf("change it: %d %s", code, body)
	}
	if code, _ := apiGet(t, urls.HTTP+"/api/v1/machines", "admin", "a-password-of-mine"); code != 200 {
		t.Errorf("with the new password: %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
