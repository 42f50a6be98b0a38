// Package auth is who may use Slipway's API and console: local users
// in the store (passwords hashed with bcrypt), their roles, and signed
// session tokens (JWT, HS256, with a key in the data directory) that can
// be revoked before they expire.
//
// Roles, each allowed what the ones before it are: viewer (read),
// operator (power, provisioning), admin (users, BMCs, firmware). A token
// also lists the role names NICo's dialect wants (SLIPWAY_PROVIDER_ADMIN
// for admin: NICo requires a role with the PROVIDER_ADMIN suffix for
// firmware operations).
//
// Failed logins are limited per client address, and logged without the
// password.
package auth

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/slipway/slipway/appliance/keyfile"
	"github.com/slipway/slipway/store"
)

// Roles.
const (
	Viewer   = "viewer"
	Operator = "operator"
	Admin    = "admin"
)

// Rank orders roles: a role may do what a lower rank may. Unknown is 0.
func Rank(role string) int {
	switch role {
	case Viewer:
		return 1
	case Operator:
		return 2
	case Admin:
		return 3
	}
	return 0
}

// NICoRoles are the role names a token carries for a role.
func NICoRoles(role string) []string {
	switch role {
	case Admin:
		return []string{Admin, "SLIPWAY_PROVIDER_ADMIN"}
	case Operator:
		return []string{Operator, "SLIPWAY_PROVIDER_OPERATOR"}
	}
	return []string{role, "SLIPWAY_PROVIDER_VIEWER"}
}

// Config is what a Service works with.
type Config struct {
	DB      *store.Store
	Commit  *store.Committer
	KeyFile string        // the token signing key; created on first use
	TTL     time.Duration // how long a session lasts (default 12 h)
	Log     *slog.Logger
	// Now is the clock sessions expire and logins are slowed by; nil
	// means time.Now.
	Now func() time.Time
	// HashCost is bcrypt's cost for the passwords it stores; 0 means
	// bcrypt.DefaultCost. Tests lower it: under the race detector every
	// hash costs seconds.
	HashCost int
}

// Service authenticates users and issues, checks and revokes sessions.
type Service struct {
	cfg      Config
	key      []byte
	log      *slog.Logger
	limiter  *limiter // failed logins per client address
	accounts *limiter // failed logins per account, from any address

	mu      sync.Mutex
	users   map[string]store.User
	revoked map[string]time.Time // token id → its expiry
}

// ErrBadCredentials is a wrong user name or password; which, it does not say.
var ErrBadCredentials = errors.New("wrong user name or password")

// ErrUnauthenticated is a missing, malformed, expired or revoked token.
var ErrUnauthenticated = errors.New("not logged in, or the session ended: log in again")

// New loads the users and the revoked tokens.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.TTL <= 0 {
		cfg.TTL = 12 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HashCost == 0 {
		cfg.HashCost = bcrypt.DefaultCost
	}
	key, err := keyfile.Load(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w (sessions signed with it end; users log in again)", err)
	}
	s := &Service{cfg: cfg, key: key, log: cfg.Log, limiter: newLimiter(cfg.Now, freeFailures), accounts: newLimiter(cfg.Now, accountFreeFailures), users: map[string]store.User{}}
	if err := s.reload(ctx); err != nil {
		return nil, err
	}
	if s.revoked, err = cfg.DB.RevokedTokens(ctx); err != nil {
		return nil, fmt.Errorf("load revoked sessions: %w", err)
	}
	return s, nil
}

func (s *Service) reload(ctx context.Context) error {
	list, err := s.cfg.DB.Users(ctx)
	if err != nil {
		return fmt.Errorf("load users: %w", err)
	}
	users := make(map[string]store.User, len(list))
	for _, u := range list {
		users[u.Name] = u
	}
	s.mu.Lock()
	s.users = users
	s.mu.Unlock()
	return nil
}

// Account is a user as the config file names it.
type Account struct {
	Name, Role, PasswordHash string
}

// Bootstrap makes the config's users the users of source "config" (added,
// updated, and removed when the config no longer names them). If then no
// admin exists at all, it creates "admin" with a one-time password, which
// it returns (hashed in the store, shown nowhere else): the first start
// needs a way in.
func (s *Service) Bootstrap(ctx context.Context, configured []Account) (oneTimePassword string, err error) {
	named := map[string]bool{}
	err = s.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		for _, a := range configured {
			named[a.Name] = true
			u := store.User{Name: a.Name, Role: a.Role, PasswordHash: a.PasswordHash, Source: "config"}
			if prev, ok := s.user(a.Name); ok {
				// A new password or role in the config ends the user's sessions.
				u.SessionGen = prev.SessionGen
				if prev.Role != u.Role || prev.PasswordHash != u.PasswordHash {
					u.SessionGen++
				}
			}
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		for _, u := range s.snapshot() {
			if u.Source == "config" && !named[u.Name] {
				if err := tx.DeleteUser(u.Name); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("users from the config: %w", err)
	}
	if err := s.reload(ctx); err != nil {
		return "", err
	}
	if s.hasAdmin() {
		return "", nil
	}
	pw := randomPassword()
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), s.cfg.HashCost)
	if err != nil {
		return "", err
	}
	u := store.User{Name: "admin", Role: Admin, PasswordHash: string(hash), Source: "first-start", MustChange: true}
	if err := s.cfg.Commit.Do(ctx, func(tx *store.Tx) error { return tx.PutUser(u) }); err != nil {
		return "", fmt.Errorf("first admin: %w", err)
	}
	return pw, s.reload(ctx)
}

func (s *Service) snapshot() []store.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *Service) hasAdmin() bool {
	for _, u := range s.snapshot() {
		if u.Role == Admin {
			return true
		}
	}
	return false
}

func randomPassword() string {
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
}

// Check verifies a user name and password from client (an address, for
// limiting guesses). It is what a login and HTTP basic authentication do.
func (s *Service) Check(name, password, client string) (User, error) {
	if wait := s.limiter.blocked(client); wait > 0 {
		return User{}, &TooManyAttemptsError{RetryAfter: wait, Of: "this address"}
	}
	if wait := s.accounts.blocked(name); wait > 0 {
		return User{}, &TooManyAttemptsError{RetryAfter: wait, Of: "this account"}
	}
	s.mu.Lock()
	u, known := s.users[name]
	s.mu.Unlock()
	hash := u.PasswordHash
	if !known {
		hash = unknownUserHash // as slow as a wrong password: names do not leak
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)); err != nil || !known {
		wait := s.limiter.failed(client)
		if known { // names nobody has cannot fill the account limiter
			wait = max(wait, s.accounts.failed(name))
		}
		s.log.Warn("login refused", "user", name, "client", client, "known_user", known, "blocked_for", wait)
		return User{}, ErrBadCredentials
	}
	s.limiter.succeeded(client)
	s.accounts.succeeded(name)
	return userOf(u), nil
}

// unknownUserHash is a bcrypt hash of a password nobody has.
const unknownUserHash = "$2a$10$WC.9uPP8PAvHIbfIhjwD6uroL.G9Z7wj.T1QdQD0tPzvnBdfx0tB."

// TooManyAttemptsError is a client, or an account, that failed to log in
// too often.
type TooManyAttemptsError struct {
	RetryAfter time.Duration
	Of         string // "this address" or "this account"
}

func (e *TooManyAttemptsError) Error() string {
	return fmt.Sprintf("too many failed logins for %s: try again in %s", e.Of, e.RetryAfter.Round(time.Second))
}

// Session is a login: the token and what it says.
type Session struct {
	Token      string // empty for a caller by HTTP basic: no session
	User       string
	Role       string
	Roles      []string // the role, and its NICo name
	Expires    time.Time
	MustChange bool   // a one-time password: it may only be changed
	ID         string // the token's id (jti), what a logout revokes
}

type claims struct {
	Role  string   `json:"role"`
	Roles []string `json:"roles"`
	// Gen is the user's session generation at login (see store.User).
	Gen int `json:"gen,omitempty"`
	jwt.RegisteredClaims
}

const issuer = "slipway"

// Login checks a user's password and issues a session token, recorded so
// that an admin can list it and end it.
func (s *Service) Login(ctx context.Context, name, password, client string) (Session, error) {
	u, err := s.Check(name, password, client)
	if err != nil {
		return Session{}, err
	}
	now := s.cfg.Now()
	sess := Session{User: u.Name, Role: u.Role, Roles: NICoRoles(u.Role), Expires: now.Add(s.cfg.TTL).Truncate(time.Second),
		MustChange: u.MustChange, ID: uuid.NewString()}
	gen := 0
	if stored, ok := s.user(u.Name); ok {
		gen = stored.SessionGen
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{Role: u.Role, Roles: sess.Roles, Gen: gen, RegisteredClaims: jwt.RegisteredClaims{
		ID: sess.ID, Subject: u.Name, Issuer: issuer, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(sess.Expires),
	}})
	if sess.Token, err = tok.SignedString(s.key); err != nil {
		return Session{}, fmt.Errorf("sign session: %w", err)
	}
	record := store.Session{ID: sess.ID, User: u.Name, Client: client, Gen: gen, ExpiresAt: sess.Expires}
	if err := s.cfg.Commit.Do(ctx, func(tx *store.Tx) error { return tx.AddSession(record) }); err != nil {
		return Session{}, fmt.Errorf("record session: %w", err)
	}
	s.log.Info("login", "user", u.Name, "role", u.Role, "client", client)
	return sess, nil
}

// Verify checks a session token: signature, issuer, expiry, revocation,
// that its user still exists and has not had its sessions ended since. The role is the user's role now, not
// the one at login.
func (s *Service) Verify(token string) (Session, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return s.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithIssuer(issuer), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.cfg.Now))
	if err != nil {
		return Session{}, ErrUnauthenticated
	}
	s.mu.Lock()
	_, revoked := s.revoked[c.ID]
	u, exists := s.users[c.Subject]
	s.mu.Unlock()
	if revoked || !exists || c.Gen < u.SessionGen {
		return Session{}, ErrUnauthenticated
	}
	return Session{User: u.Name, Role: u.Role, Roles: NICoRoles(u.Role), Expires: c.ExpiresAt.Time, MustChange: u.MustChange, ID: c.ID}, nil
}

// Logout revokes a session until it would have expired.
func (s *Service) Logout(ctx context.Context, sess Session) error {
	if err := s.cfg.Commit.Do(ctx, func(tx *store.Tx) error { return tx.RevokeToken(sess.ID, sess.Expires) }); err != nil {
		return err
	}
	s.mu.Lock()
	s.revoked[sess.ID] = sess.Expires
	now := s.cfg.Now()
	for id, exp := range s.revoked {
		if exp.Before(now) {
			delete(s.revoked, id)
		}
	}
	s.mu.Unlock()
	s.log.Info("logout", "user", sess.User)
	return nil
}

// SessionInfo is a live session, as an admin lists it.
type SessionInfo struct {
	ID        string
	User      string
	Client    string // the address it logged in from
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Sessions lists the sessions that are live: not expired, not ended, not
// ended by a password change since. Callers by HTTP basic have none.
func (s *Service) Sessions(ctx context.Context) ([]SessionInfo, error) {
	list, err := s.cfg.DB.Sessions(ctx)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SessionInfo, 0, len(list))
	for _, r := range list {
		u, exists := s.users[r.User]
		if _, revoked := s.revoked[r.ID]; revoked || !exists || r.Gen < u.SessionGen || !r.ExpiresAt.After(now) {
			continue
		}
		out = append(out, SessionInfo{ID: r.ID, User: r.User, Client: r.Client, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt})
	}
	return out, nil
}

// ErrNoSession is a session id that names no live session.
var ErrNoSession = errors.New("no such session")

// EndSession ends one session by its id, as its own logout would.
func (s *Service) EndSession(ctx context.Context, id string) error {
	var r store.Session
	err := s.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		var err error
		if r, err = tx.Session(id); err != nil {
			return err
		}
		return tx.RevokeToken(r.ID, r.ExpiresAt)
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("session %s: %w", id, ErrNoSession)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.revoked[r.ID] = r.ExpiresAt
	s.mu.Unlock()
	s.log.Info("session ended", "user", r.User, "session", r.ID)
	return nil
}
