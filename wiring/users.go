package wiring

import (
	"context"

	"github.com/slipway/slipway/appliance/auth"
)

// startAuth loads the users, makes the config's users theirs, and on a
// first start without any admin prints a one-time admin password.
func (a *Appliance) startAuth(ctx context.Context, p *parts) error {
	var err error
	p.auth, err = auth.New(ctx, auth.Config{DB: p.db, Commit: p.commit, KeyFile: a.cfg.SessionKeyFile(),
		TTL: a.cfg.HTTP.SessionTTL, Log: a.log.With("part", "auth")})
	if err != nil {
		return err
	}
	accounts := make([]auth.Account, len(a.cfg.Users))
	for i, u := range a.cfg.Users {
		accounts[i] = auth.Account{Name: u.Name, Role: u.Role, PasswordHash: u.PasswordHash}
	}
	oneTime, err := p.auth.Bootstrap(ctx, accounts)
	if err != nil {
		return err
	}
	if oneTime != "" {
		a.log.Warn("first start: no admin is configured, so one was made. Log in as admin with this one-time password "+
			"and change it (it is shown only now): "+oneTime, "user", "admin")
		if a.opts.OnFirstAdmin != nil {
			a.opts.OnFirstAdmin(oneTime)
		}
	}
	return nil
}
