package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"golang.org/x/crypto/bcrypt"

	"github.com/slipway/slipway/store"
)

// User is a user as the API shows it: never the hash.
type User struct {
	Name       string
	Role       string
	Source     string // config | api | first-start
	MustChange bool
}

// Users lists the users.
func (s *Service) Users() []User {
	list := s.snapshot()
	out := make([]User, len(list))
	for i, u := range list {
		out[i] = userOf(u)
	}
	return out
}

func userOf(u store.User) User {
	return User{Name: u.Name, Role: u.Role, Source: u.Source, MustChange: u.MustChange}
}

var userName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// MinPasswordLength is the shortest password a user may set.
const MinPasswordLength = 10

// ErrConfigUser is a change to a user the config file defines: edit the file.
var ErrConfigUser = errors.New("this user is defined in the config file: change it there")

// AddUser creates a user.
func (s *Service) AddUser(ctx context.Context, name, role, password string) (User, error) {
	switch {
	case !userName.MatchString(name):
		return User{}, fmt.Errorf("user name %q: use letters, digits, '.', '_' and '-'", name)
	case Rank(role) == 0:
		return User{}, fmt.Errorf("role %q: use viewer, operator or admin", role)
	}
	if _, exists := s.user(name); exists {
		return User{}, fmt.Errorf("user %s: %w: the name is taken", name, store.ErrConflict)
	}
	hash, err := s.hashPassword(password)
	if err != nil {
		return User{}, err
	}
	u := store.User{Name: name, Role: role, PasswordHash: hash, Source: "api"}
	if err := s.put(ctx, u); err != nil {
		return User{}, err
	}
	s.log.Info("user added", "user", name, "role", role)
	return User{Name: name, Role: role, Source: "api"}, nil
}

// SetPassword changes a user's password (and ends a one-time password),
// and ends every session the user had: whoever knew the old one is out.
func (s *Service) SetPassword(ctx context.Context, name, password string) error {
	u, ok := s.user(name)
	if !ok {
		return fmt.Errorf("user %s: %w", name, store.ErrNotFound)
	}
	if u.Source == "config" {
		return ErrConfigUser
	}
	hash, err := s.hashPassword(password)
	if err != nil {
		return err
	}
	u.PasswordHash, u.MustChange = hash, false
	u.SessionGen++
	if u.Source == "first-start" {
		u.Source = "api"
	}
	if err := s.put(ctx, u); err != nil {
		return err
	}
	s.log.Info("password changed", "user", name)
	return nil
}

// DeleteUser removes a user; the last admin stays.
func (s *Service) DeleteUser(ctx context.Context, name string) error {
	u, ok := s.user(name)
	if !ok {
		return fmt.Errorf("user %s: %w", name, store.ErrNotFound)
	}
	if u.Source == "config" {
		return ErrConfigUser
	}
	if u.Role == Admin && s.admins() == 1 {
		return fmt.Errorf("user %s is the last admin: %w", name, store.ErrConflict)
	}
	if err := s.cfg.Commit.Do(ctx, func(tx *store.Tx) error { return tx.DeleteUser(name) }); err != nil {
		return err
	}
	s.log.Info("user deleted", "user", name)
	return s.reload(ctx)
}

func (s *Service) user(name string) (store.User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	return u, ok
}

func (s *Service) admins() int {
	n := 0
	for _, u := range s.snapshot() {
		if u.Role == Admin {
			n++
		}
	}
	return n
}

func (s *Service) put(ctx context.Context, u store.User) error {
	if err := s.cfg.Commit.Do(ctx, func(tx *store.Tx) error { return tx.PutUser(u) }); err != nil {
		return err
	}
	return s.reload(ctx)
}

func (s *Service) hashPassword(password string) (string, error) {
	if len(password) < MinPasswordLength {
		return "", fmt.Errorf("the password is shorter than %d characters", MinPasswordLength)
	}
	if len(password) > 72 {
		return "", errors.New("the password is longer than 72 bytes, which bcrypt cannot use")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.cfg.HashCost)
	return string(h), err
}
