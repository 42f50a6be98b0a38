package listener

import (
	"sync/atomic"
	"time"
)

// Throttle lets a repeated warning through at most once per Every and
// counts what it held back, so that a shortage that lasts is a line a
// minute in the log, not thousands. The zero value with Every set is
// ready; it is safe for concurrent use.
type Throttle struct {
	Every time.Duration
	last  atomic.Int64 // when a warning last went through, Unix nanoseconds
	since atomic.Int64 // occurrences since then
}

// Note counts one occurrence at now, and says whether to warn of it and
// how many occurrences (this one included) the warning stands for.
func (t *Throttle) Note(now time.Time) (warn bool, count int64) {
	n := t.since.Add(1)
	at, last := now.UnixNano(), t.last.Load()
	if last != 0 && at-last < int64(t.Every) || !t.last.CompareAndSwap(last, at) {
		return false, 0
	}
	t.since.Add(-n)
	return true, n
}
