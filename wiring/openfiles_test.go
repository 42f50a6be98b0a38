package wiring

import (
	"strings"
	"testing"
)

func TestOpenFilesWarning(t *testing.T) {
	for _, c := range []struct {
		limit       uint64
		maxMachines int
		want        string // "" for no warning, else a part of it
	}{
		{1_048_576, 10_000, ""},
		{24_096, 10_000, ""},
		{20_000, 10_000, "the open files limit is 20000: a site of 10000 machines (discovery.max_machines) booting at once needs about 24096"},
		{1024, 0, "a site of 10000 machines"},
		{1024, 100, "needs about 4296"},
		{8192, 100, ""},
		{65_536, 50_000, "LimitNOFILE"},
	} {
		got := openFilesWarning(c.limit, c.maxMachines)
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("openFilesWarning(%d, %d) = %q; want %q", c.limit, c.maxMachines, got, c.want)
		}
	}
}
