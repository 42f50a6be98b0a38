package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

func newService(t testing.TB, db *store.Store, commit *store.Committer, dir string, ttl time.Duration, clock ...func() time.Time) *Service {
	t.Helper()
	cfg := Config{DB: db, Commit: commit, KeyFile: filepath.Join(dir, "jwt.key"), TTL: ttl, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), HashCost: bcrypt.MinCost}
	if len(clock) > 0 {
		cfg.Now = clock[0]
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hash(t *testing.T, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestFirstStartGivesAOneTimeAdminPassword(t *testing.T) {
	db, commit := testkit.OpenStore(t)
	s := newService(t, db, commit, t.TempDir(), time.Hour)
	pw, err := s.Bootstrap(context.Background(), nil)
	if err != nil || len(pw) < 20 {
		t.Fatalf("one-time password %q, %v", pw, err)
	}
	sess, err := s.Login(context.Background(), "admin", pw, "10.0.0.9")
	if err != nil || sess.Role != Admin || !sess.MustChange {
		t.Fatalf("login with the one-time password: %+v %v", sess, err)
	}
	if again, _ := s.Bootstrap(context.Background(), nil); again != "" {
		t.Error("a second start made another one-time password")
	}
	if err := s.SetPassword(context.Background(), "admin", "a-better-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Login(context.Background(), "admin", pw, "10.0.0.9"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("the one-time password still works: %v", err)
	}
	if sess, _ := s.Login(context.Background(), "admin", "a-better-password", "10.0.0.9"); sess.MustChange {
		t.Error("still must change after changing")
	}
}

func TestConfigUsersFollowTheConfig(t *testing.T) {
	db, commit := testkit.OpenStore(t)
	s := newService(t, db, commit, t.TempDir(), time.Hour)
	ctx := context.Background()
	pw, err := s.Bootstrap(ctx, []Account{{Name: "ann", Role: Admin, PasswordHash: hash(t, "ann-password")}, {Name: "vic", Role: Viewer, PasswordHash: hash(t, "vic-password")}})
	if err != nil || pw != "" {
		t.Fatalf("with a configured admin: %q %v", pw, err)
	}
	if err := s.SetPassword(ctx, "vic", "whatever-long"); !errors.Is(err, ErrConfigUser) {
		t.Errorf("changed a config user's password: %v", err)
	}
	if _, err := s.Bootstrap(ctx, []Account{{Name: "ann", Role: Admin, PasswordHash: hash(t, "ann-password")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Login(context.Background(), "vic", "vic-password", "c"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("a user removed from the config logs in: %v", err)
	}
}

func TestSessions(t *testing.T) {
	s, db, commit, dir := annAndOtto(t)
	ctx := context.Background()
	sess, err := s.Login(context.Background(), "otto", "otto-password", "c")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Verify(sess.Token)
	if err != nil || got.User != "otto" || got.Role != Operator || strings.Join(got.Roles, ",") != "operator,SLIPWAY_PROVIDER_OPERATOR" {
		t.Fatalf("verify: %+v %v", got, err)
	}
	other := newService(t, db, commit, t.TempDir(), time.Hour) // another key
	forged, _ := other.Login(context.Background(), "otto", "otto-password", "c")
	none := jwt.NewWithClaims(jwt.SigningMethodNone, claims{Role: Admin, RegisteredClaims: jwt.RegisteredClaims{
		Subject: "otto", Issuer: issuer, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}})
	unsigned, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	// A session issued two seconds ago with a one-second life, by a clock
	// the test sets instead of waiting.
	issued := func() time.Time { return time.Now().Add(-2 * time.Second) }
	expiring, _ := newService(t, db, commit, dir, time.Second, issued).Login(context.Background(), "otto", "otto-password", "c")
	for name, tok := range map[string]string{
		"signed with another key": forged.Token, "unsigned (alg none)": unsigned, "expired": expiring.Token,
		"tampered": sess.Token[:len(sess.Token)-2] + "xx", "garbage": "not.a.token",
	} {
		if _, err := s.Verify(tok); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Logout revokes, across a restart too.
	if err := s.Logout(ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := newService(t, db, commit, dir, time.Hour).Verify(sess.Token); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("revoked session after a restart: %v", err)
	}
	// A deleted user's session ends; the last admin cannot go.
	sess, _ = s.Login(context.Background(), "otto", "otto-password", "c")
	if err := s.DeleteUser(ctx, "otto"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(sess.Token); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("deleted user's session: %v", err)
	}
	if _, err := s.AddUser(ctx, "root", Admin, "root-password"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "root"); err != nil {
		t.Fatal(err)
	}
}

func TestAddUserRefusals(t *testing.T) {
	db, commit := testkit.OpenStore(t)
	s := newService(t, db, commit, t.TempDir(), time.Hour)
	ctx := context.Background()
	if _, err := s.AddUser(ctx, "admin2", Admin, "long-enough-pw"); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, user, role, pw, want string }{
		{"short password", "a", Viewer, "short", "shorter than 10"},
		{"bad name", "../x", Viewer, "long-enough-pw", "user name"},
		{"bad role", "b", "root", "long-enough-pw", "use viewer, operator or admin"},
		{"taken", "admin2", Viewer, "long-enough-pw", "taken"},
	}
	for _, tt := range tests {
		if _, err := s.AddUser(ctx, tt.user, tt.role, tt.pw); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if err := s.DeleteUser(ctx, "admin2"); err == nil || !strings.Contains(err.Error(), "last admin") {
		t.Errorf("deleted the last admin: %v", err)
	}
}

func TestGuessingIsSlowedPerClient(t *testing.T) {
	db, commit := testkit.OpenStore(t)
	s := newService(t, db, commit, t.TempDir(), time.Hour)
	if _, err := s.AddUser(context.Background(), "ann", Admin, "ann-password"); err != nil {
		t.Fatal(err)
	}
	for i := range freeFailures {
		if _, err := s.Login(context.Background(), "ann", "guess", "10.0.0.66"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	_, _ = s.Login(context.Background(), "ann", "guess", "10.0.0.66")
	var tooMany *TooManyAttemptsError
	if _, err := s.Login(context.Background(), "ann", "ann-password", "10.0.0.66"); !errors.As(err, &tooMany) || tooMany.RetryAfter <= 0 {
		t.Errorf("the right password right after too many guesses: %v", err)
	}
	if _, err := s.Login(context.Background(), "ann", "ann-password", "10.0.0.7"); err != nil {
		t.Errorf("another client is not blocked: %v", err)
	}
}

func TestBlocksDouble(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	l := newLimiter(func() time.Time { return now }, freeFailures)
	var got []time.Duration
	for range freeFailures + 6 {
		got = append(got, l.failed("c"))
	}
	want := []time.Duration{0, 0, 0, 0, 0, 30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 15 * time.Minute}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("blocks %v, want %v", got, want)
		}
	}
	if got := l.blocked("c"); got != 15*time.Minute {
		t.Errorf("blocked for %s, want 15m", got)
	}
	now = now.Add(10 * time.Minute)
	if got := l.blocked("c"); got != 5*time.Minute {
		t.Errorf("10 minutes later: blocked for %s, want 5m", got)
	}
	l.succeeded("c")
	if l.blocked("c") != 0 {
		t.Error("a success did not forgive")
	}
}

// No string but a token this service signed verifies: not a forged one,
// not a mangled one, and nothing panics.
func FuzzVerify(f *testing.F) {
	db, commit := testkit.OpenStore(f)
	s := newService(f, db, commit, f.TempDir(), time.Hour)
	if _, err := s.AddUser(context.Background(), "ann", Admin, "ann-password"); err != nil {
		f.Fatal(err)
	}
	good, err := s.Login(context.Background(), "ann", "ann-password", "c")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{good.Token, "", "a.b.c", good.Token + "x", strings.Replace(good.Token, ".", "..", 1)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		sess, err := s.Verify(token)
		if err == nil && token != good.Token {
			// Base64url allows a few spellings of the same bytes; only
			// those may pass, and only as ann.
			if sess.User != "ann" || sess.ID != good.ID {
				t.Fatalf("%q verified as %+v", token, sess)
			}
		}
	})
}

// A password change, or a new password or role in the config, ends the
// user's sessions; a config that changes nothing of a user keeps them.
func TestSessionsEndWhenCredentialsOrRoleChange(t *testing.T) {
	db, commit := testkit.OpenStore(t)
	s := newService(t, db, commit, t.TempDir(), time.Hour)
	ctx := context.Background()
	ann := Account{Name: "ann", Role: Admin, PasswordHash: hash(t, "ann-password")}
	if _, err := s.Bootstrap(ctx, []Account{ann}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddUser(ctx, "otto", Operator, "otto-password"); err != nil {
		t.Fatal(err)
	}
	login := func(user, pw string) string {
		sess, err := s.Login(context.Background(), user, pw, "c")
		if err != nil {
			t.Fatal(err)
		}
		return sess.Token
	}
	valid := func(token string) bool { _, err := s.Verify(token); return err == nil }

	otto, annToken := login("otto", "otto-password"), login("ann", "ann-password")
	if err := s.SetPassword(ctx, "otto", "otto-new-password"); err != nil {
		t.Fatal(err)
	}
	if valid(otto) {
		t.Error("a session from before the password change is still valid")
	}
	if !valid(login("otto", "otto-new-password")) || !valid(annToken) {
		t.Error("a session after the change, or another user's, was refused")
	}
	if _, err := s.Bootstrap(ctx, []Account{ann}); err != nil || !valid(annToken) {
		t.Errorf("an unchanged config ended a session (%v)", err)
	}
	ann.Role = Viewer
	if _, err := s.Bootstrap(ctx, []Account{ann, {Name: "root", Role: Admin, PasswordHash: hash(t, "root-password")}}); err != nil {
		t.Fatal(err)
	}
	if valid(annToken) {
		t.Error("a session from before the config changed the user's role is still valid")
	}
}

// Guesses spread over many addresses are slowed per account too: six
// addresses × five guesses each are not all let through.
func TestGuessingIsSlowedPerAccount(t *testing.T) {
	db, commit := testkit.OpenStore(t)
	s := newService(t, db, commit, t.TempDir(), time.Hour)
	if _, err := s.AddUser(context.Background(), "ann", Admin, "ann-password"); err != nil {
		t.Fatal(err)
	}
	var tooMany *TooManyAttemptsError
	blocked := 0
	for a := range 6 {
		for range freeFailures {
			if _, err := s.Login(context.Background(), "ann", "guess", fmt.Sprintf("10.0.1.%d", a)); errors.As(err, &tooMany) {
				blocked++
			}
		}
	}
	if blocked == 0 {
		t.Fatal("thirty guesses from six addresses were never slowed")
	}
	if _, err := s.Login(context.Background(), "ann", "ann-password", "10.0.1.99"); !errors.As(err, &tooMany) || tooMany.Of != "this account" {
		t.Errorf("a fresh address right after the guesses: %v", err)
	}
	// Names nobody has are not tracked: they cannot lock anyone out.
	for i := range accountFreeFailures + 5 {
		_, _ = s.Login(context.Background(), fmt.Sprintf("nobody-%d", i%2), "guess", fmt.Sprintf("10.0.2.%d", i))
	}
	if n := len(s.accounts.clients); n != 1 {
		t.Errorf("the account limiter holds %d names, want ann's only", n)
	}
}

// An admin sees every live session with where it logged in from, and can
// end one: its token stops working at once, and after a restart too.
// Sessions a logout or a password change ended are not listed.
func TestAdminListsAndEndsSessions(t *testing.T) {
	s, db, commit, dir := annAndOtto(t)
	ctx := context.Background()
	login := func(user, client string) Session {
		t.Helper()
		sess, err := s.Login(ctx, user, user+"-password", client)
		if err != nil {
			t.Fatal(err)
		}
		return sess
	}
	ann, otto1, otto2, gone := login("ann", "10.0.0.1"), login("otto", "10.0.0.2"), login("otto", "10.0.0.3"), login("ann", "10.0.0.4")
	if err := s.Logout(ctx, gone); err != nil {
		t.Fatal(err)
	}
	list, err := s.Sessions(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("%d sessions listed, want 3 (one logged out): %+v, %v", len(list), list, err)
	}
	clients := map[string]string{}
	for _, l := range list {
		clients[l.ID] = l.User + "@" + l.Client
	}
	if clients[otto1.ID] != "otto@10.0.0.2" || clients[ann.ID] != "ann@10.0.0.1" {
		t.Fatalf("sessions: %v", clients)
	}
	if err := s.EndSession(ctx, otto1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(otto1.Token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("an ended session still works: %v", err)
	}
	if _, err := s.Verify(otto2.Token); err != nil {
		t.Fatalf("ending one session ended another: %v", err)
	}
	if err := s.EndSession(ctx, "no-such-id"); !errors.Is(err, ErrNoSession) {
		t.Fatalf("ending an unknown session: %v", err)
	}
	// A password change ends otto's other session: no longer listed.
	if err := s.SetPassword(ctx, "otto", "otto-new-password"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.Sessions(ctx); len(list) != 1 || list[0].ID != ann.ID {
		t.Fatalf("after otto's password change: %+v", list)
	}
	restarted := newService(t, db, commit, dir, time.Hour)
	if _, err := restarted.Verify(otto1.Token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("an ended session works after a restart: %v", err)
	}
	if list, _ := restarted.Sessions(ctx); len(list) != 1 {
		t.Fatalf("after a restart: %+v", list)
	}
}

// annAndOtto is a service with an admin, ann, and an operator, otto, and
// the store and directory it keeps them in.
func annAndOtto(t *testing.T) (*Service, *store.Store, *store.Committer, string) {
	t.Helper()
	db, commit := testkit.OpenStore(t)
	dir := t.TempDir()
	s := newService(t, db, commit, dir, time.Hour)
	ctx := context.Background()
	if _, err := s.Bootstrap(ctx, []Account{{Name: "ann", Role: Admin, PasswordHash: hash(t, "ann-password")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddUser(ctx, "otto", Operator, "otto-password"); err != nil {
		t.Fatal(err)
	}
	return s, db, commit, dir
}
