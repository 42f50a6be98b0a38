package listener

import (
	"testing"
	"time"
)

func TestThrottleLetsOneWarningThroughPerInterval(t *testing.T) {
	th := Throttle{Every: time.Minute}
	t0 := time.Unix(1_800_000_000, 0)
	for _, step := range []struct {
		at    time.Duration
		warn  bool
		count int64
	}{
		{0, true, 1},
		{time.Second, false, 0},
		{30 * time.Second, false, 0},
		{59 * time.Second, false, 0},
		{61 * time.Second, true, 4}, // itself and the three held back
		{62 * time.Second, false, 0},
		{10 * time.Minute, true, 2},
	} {
		warn, count := th.Note(t0.Add(step.at))
		if warn != step.warn || count != step.count {
			t.Errorf("at %v: warn %v count %d, want %v %d", step.at, warn, count, step.warn, step.count)
		}
	}
}
