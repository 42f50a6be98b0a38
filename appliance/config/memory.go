package config

import (
	"fmt"
	"strconv"
	"strings"
)

// MemoryLimit is memory_limit as read: a soft limit on the memory the Go
// runtime holds, past which it collects garbage harder rather than grow.
type MemoryLimit struct {
	// Auto: a share of what the box, or the cgroup Slipway runs in, has.
	Auto bool
	// Bytes is the limit when not Auto; 0 is none.
	Bytes int64
}

// minMemoryLimit is the smallest limit taken: below it the runtime would
// spend its time collecting while Slipway idles.
const minMemoryLimit = 64 << 20

// sizeUnits are GOMEMLIMIT's suffixes, so that a value moves between the
// environment variable and the file unchanged.
var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// ParseMemoryLimit reads memory_limit: "auto", "off", or a size written
// as GOMEMLIMIT takes it (768MiB, 2GiB).
func ParseMemoryLimit(s string) (MemoryLimit, error) {
	switch s {
	case "auto":
		return MemoryLimit{Auto: true}, nil
	case "off":
		return MemoryLimit{}, nil
	}
	for _, u := range sizeUnits {
		digits, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(digits, 10, 64)
		if err != nil || n <= 0 || n > (1<<62)>>u.shift {
			break
		}
		if n<<u.shift < minMemoryLimit {
			return MemoryLimit{}, fmt.Errorf("%s is less than 64MiB", s)
		}
		return MemoryLimit{Bytes: n << u.shift}, nil
	}
	return MemoryLimit{}, fmt.Errorf("%q is neither auto, off nor a size such as 768MiB", s)
}

// Memory is memory_limit read; valid after Validate.
func (c *Config) Memory() MemoryLimit { return c.memory }
