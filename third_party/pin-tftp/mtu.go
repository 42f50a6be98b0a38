package tftp

import (
	"net"
	"sync"
	"time"
)

// mtuCache remembers the MTU of the interfaces requests come in on for a
// while. Each request looked its interface up anew, a listing of every
// interface from the kernel: at thousands of requests a second (a site's
// firmware booting at once, repeating its requests) a few per cent of the
// server's CPU.
type mtuCache struct {
	byIndex sync.Map // interface index → mtuEntry
	now     func() time.Time
}

type mtuEntry struct {
	mtu int
	at  time.Time
}

// mtuFresh is how long a looked-up MTU is used: an MTU changed on a live
// interface is seen within it.
const mtuFresh = 10 * time.Second

func (c *mtuCache) mtu(index int) (int, bool) {
	now := time.Now()
	if c.now != nil {
		now = c.now()
	}
	if e, ok := c.byIndex.Load(index); ok && now.Sub(e.(mtuEntry).at) < mtuFresh {
		return e.(mtuEntry).mtu, true
	}
	intf, err := net.InterfaceByIndex(index)
	if err != nil {
		return 0, false
	}
	c.byIndex.Store(index, mtuEntry{intf.MTU, now})
	return intf.MTU, true
}
