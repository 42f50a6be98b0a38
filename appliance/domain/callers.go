package domain

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// CallerPolicy is netboot.caller_check: who may speak for a MAC at the
// node-facing doors (its heartbeats, cloud-init data, boot configs).
type CallerPolicy string

const (
	// CallerAddress: the machine itself (its leased address, or the
	// address the neighbour table has for its MAC), or whoever holds its
	// node token.
	CallerAddress CallerPolicy = "address"
	// CallerOff: anyone, for any MAC (a lab behind NAT, say).
	CallerOff CallerPolicy = "off"
)

// Caller is who sent a request that speaks for a MAC: the address it came
// from and the node token it carried, if any.
type Caller struct {
	Addr  netip.Addr
	Token string
}

// CallerRefusedError is a request for a MAC that did not come from its
// machine.
type CallerRefusedError struct {
	MAC    MAC
	From   netip.Addr
	Leased netip.Addr // the MAC's address, when Slipway leased it one
	Token  bool       // a token was given, and was not the MAC's
}

func (e *CallerRefusedError) Error() string {
	why := fmt.Sprintf("%s may not speak for %s", e.From, e.MAC)
	switch {
	case e.Token:
		why += ": the node token is not that machine's"
	case e.Leased.IsValid():
		why += fmt.Sprintf(": it is not the machine's leased address (%s); send the node token from the machine's cloud-init or boot command line", e.Leased)
	default:
		why += ": the machine has no lease from Slipway and the neighbour table does not place it there; send the node token from its cloud-init or boot command line"
	}
	return why
}

// CallerCheckConfig is what a CallerCheck judges by.
type CallerCheckConfig struct {
	Policy CallerPolicy
	// Key makes node tokens: a token is the MAC signed with it.
	Key []byte
	// Leased is the address Slipway leased a MAC, if any (nil when
	// Slipway gives no addresses: proxyDHCP).
	Leased func(MAC) (netip.Addr, bool)
	// Neighbor is the MAC the kernel's neighbour table has for an address
	// on the LAN (nil: not consulted).
	Neighbor func(netip.Addr) (MAC, error)
	// Own is the box's address on the LAN: a request from it comes from
	// the box itself, as one from loopback does.
	Own netip.Addr
	Log *slog.Logger
}

// CallerCheck decides whether a request that speaks for a MAC comes from
// that machine. Any host on the LAN can post a heartbeat or fetch cloud-init
// data naming any MAC; only the machine itself should move its lifecycle or
// read its data. Requests from the box itself (loopback, its own LAN
// address) are trusted: whoever runs there can read the database anyway.
type CallerCheck struct {
	cfg     CallerCheckConfig
	refused atomic.Int64
	logged  refusalLog
}

// NewCallerCheck returns a check by cfg.
func NewCallerCheck(cfg CallerCheckConfig) *CallerCheck {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &CallerCheck{cfg: cfg}
}

// Token is mac's node token: Slipway puts it in the machine's cloud-init
// data and boot command line, so that the machine can prove itself from an
// address that is not its lease (an installed system with a static one).
// It is the MAC signed with the box's node key: nothing to store, and new
// keys make new tokens.
func (c *CallerCheck) Token(mac MAC) string {
	h := hmac.New(sha256.New, c.cfg.Key)
	h.Write([]byte("slipway node token\x00" + string(mac)))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}

// Prove returns nil when from may speak for mac, else a
// *CallerRefusedError (which it counts and logs, at most every few seconds).
func (c *CallerCheck) Prove(mac MAC, from Caller, door Door) error {
	if addr := from.Addr.Unmap(); c == nil || c.cfg.Policy == CallerOff || addr.IsLoopback() || addr == c.cfg.Own && addr.IsValid() {
		return nil
	}
	err := c.judge(mac, from)
	if err != nil {
		c.refused.Add(1)
		c.logged.refused(c.cfg.Log, string(door), err)
	}
	return err
}

func (c *CallerCheck) judge(mac MAC, from Caller) error {
	if from.Token != "" {
		if subtle.ConstantTimeCompare([]byte(from.Token), []byte(c.Token(mac))) == 1 {
			return nil
		}
		return &CallerRefusedError{MAC: mac, From: from.Addr, Token: true}
	}
	addr := from.Addr.Unmap()
	var leased netip.Addr
	if c.cfg.Leased != nil {
		if a, ok := c.cfg.Leased(mac); ok {
			if a == addr {
				return nil
			}
			leased = a
		}
	}
	if c.cfg.Neighbor != nil {
		if m, err := c.cfg.Neighbor(addr); err == nil && m == mac {
			return nil
		}
	}
	return &CallerRefusedError{MAC: mac, From: addr, Leased: leased}
}

// Refused counts the requests refused since start.
func (c *CallerCheck) Refused() int64 {
	if c == nil {
		return 0
	}
	return c.refused.Load()
}

// refusalLog logs the first refusal and then at most one every
// refusalLogEvery, with how many it did not log: a host forging requests
// without end must not fill the log.
type refusalLog struct {
	mu     sync.Mutex
	last   time.Time
	missed int
}

const refusalLogEvery = 10 * time.Second

func (l *refusalLog) refused(log *slog.Logger, door string, err error) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last) < refusalLogEvery {
		l.missed++
		l.mu.Unlock()
		return
	}
	missed := l.missed
	l.last, l.missed = now, 0
	l.mu.Unlock()
	log.Warn("request refused: not from the machine it names", "door", door, "reason", err, "also_refused_since_last_log", missed)
}
