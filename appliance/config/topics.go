package config

import "strings"

// The MQTT topic trees Slipway alone publishes in: the broker refuses any
// other publisher there, and validation refuses mqtt.users rules that
// would open them for writing.
const (
	// NICoTopicPrefix is NICo's event bus: NICO/v1/machine/{machineId}/state.
	NICoTopicPrefix = "NICO/"
	// SlipwayTopicPrefix is Slipway's own events: slipway/v1/machine/{machineId}/onboarding.
	SlipwayTopicPrefix = "slipway/"
)

// ReservedTopicPrefixes are the trees above.
func ReservedTopicPrefixes() []string { return []string{NICoTopicPrefix, SlipwayTopicPrefix} }

// OverlapsReservedTopics says whether a topic filter can match a topic in a
// reserved tree.
func OverlapsReservedTopics(filter string) bool {
	level, _, _ := strings.Cut(filter, "/")
	if level == "+" || level == "#" {
		return true
	}
	for _, p := range ReservedTopicPrefixes() {
		if level+"/" == p {
			return true
		}
	}
	return false
}
