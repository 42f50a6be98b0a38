package appliance

import (
	"golang.org/x/crypto/bcrypt"

	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/web"
)

// operators authenticates API users against the config's users.
type operators map[string]config.User

// unknownUserHash is compared against for a name nobody has, so that a
// wrong name takes as long to refuse as a wrong password.
const unknownUserHash = "$2a$10$WC.9uPP8PAvHIbfIhjwD6uroL.G9Z7wj.T1QdQD0tPzvnBdfx0tB."

// newOperators is nil without users: the API then says none are configured.
func newOperators(users []config.User) web.Operators {
	if len(users) == 0 {
		return nil
	}
	ops := make(operators, len(users))
	for _, u := range users {
		ops[u.Name] = u
	}
	return ops
}

func (o operators) Authenticate(name, password string) (string, bool) {
	u, known := o[name]
	hash := u.PasswordHash
	if !known {
		hash = unknownUserHash
	}
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
	return u.Role, known && err == nil
}
