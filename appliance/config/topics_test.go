package config

import "testing"

func TestOverlapsReservedTopics(t *testing.T) {
	for filter, want := range map[string]bool{"NICO/#": true, "#": true, "+/v1/x": true, "slipway/v1/+": true, "site/#": false, "NICOLAS/x": false} {
		if got := OverlapsReservedTopics(filter); got != want {
			t.Errorf("OverlapsReservedTopics(%q) = %v, want %v", filter, got, want)
		}
	}
}
