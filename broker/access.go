package broker

import (
	"log/slog"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/crypto/bcrypt"

	"github.com/slipway/slipway/appliance/config"
)

// Access says who may use the bus and how.
type Access struct {
	// Anonymous lets clients without a username connect and subscribe to
	// any topic; they can never publish.
	Anonymous bool
	Users     []User
}

// User is a named client with a bcrypt password and topic rules.
type User struct {
	Name         string
	PasswordHash string // bcrypt
	Rules        []Rule
}

// Rule grants read (subscribe) and/or write (publish) on a topic filter.
type Rule struct {
	Filter      string // MQTT topic filter: "site/#", "NICO/v1/machine/+/state"
	Read, Write bool
}

// reservedPrefixes are published by Slipway alone: no rule can open them
// for writing.
func reservedPrefixes() []string { return config.ReservedTopicPrefixes() }

// accessHook is the broker's only authentication and ACL hook. mochi
// OR-combines hooks (any hook that allows, allows), so an allow-all hook
// beside it would open the bus: there must never be another.
type accessHook struct {
	mqtt.HookBase
	access Access
	users  map[string]User
	log    *slog.Logger
}

func newAccessHook(a Access, log *slog.Logger) *accessHook {
	h := &accessHook{access: a, users: map[string]User{}, log: log}
	for _, u := range a.Users {
		h.users[u.Name] = u
	}
	return h
}

func (h *accessHook) ID() string { return "slipway-access" }

func (h *accessHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

// OnConnectAuthenticate admits anonymous clients if allowed, and named
// users whose password matches. A wrong password is refused even when
// anonymous access is on: the client meant to be someone.
func (h *accessHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	name := string(pk.Connect.Username)
	if name == "" {
		if !h.access.Anonymous {
			h.log.Info("mqtt: anonymous client refused (mqtt.anonymous is false)", "client", cl.ID, "remote", cl.Net.Remote)
		}
		return h.access.Anonymous
	}
	u, ok := h.users[name]
	if !ok || bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), pk.Connect.Password) != nil {
		h.log.Warn("mqtt: login failed", "user", name, "client", cl.ID, "remote", cl.Net.Remote)
		return false
	}
	return true
}

// OnACLCheck decides subscriptions (write false, topic is a filter) and
// publishes (write true, topic is a topic name).
func (h *accessHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write && reserved(topic) {
		return false
	}
	name := string(cl.Properties.Username)
	if name == "" {
		// $SYS/ is the broker's own state (clients, memory, versions): for
		// named users whose rules say so, not for anyone on the LAN.
		return !write && h.access.Anonymous && !strings.HasPrefix(topic, "$")
	}
	for _, r := range h.users[name].Rules {
		if (write && r.Write || !write && r.Read) && covers(r.Filter, topic) {
			return true
		}
	}
	return false
}

func reserved(topic string) bool {
	for _, p := range reservedPrefixes() {
		if strings.HasPrefix(topic, p) {
			return true
		}
	}
	return false
}

// covers says whether every topic that filter matches is matched by rule.
// A topic name is a filter that matches itself. It runs for every delivery
// to every subscriber, so it walks both levels in place rather than
// splitting them into slices.
func covers(rule, filter string) bool {
	filterDone := false // filter has no level left for the rule's next
	for {
		r, ruleRest, ruleMore := strings.Cut(rule, "/")
		if r == "#" {
			return true
		}
		if filterDone {
			return false
		}
		f, filterRest, filterMore := strings.Cut(filter, "/")
		if f == "#" || r != "+" && r != f {
			return false // the filter reaches deeper than the rule allows, or a literal differs
		}
		if !ruleMore {
			return !filterMore
		}
		filterDone = !filterMore
		rule, filter = ruleRest, filterRest
	}
}
