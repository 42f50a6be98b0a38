package wiring

import (
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/task"
)

// The bus starts with every machine's state, every BMC's last polled
// status (a BMC not polled yet has nothing to say) and every unfinished task.
func TestCurrentMessages(t *testing.T) {
	now := time.Now()
	msgs := currentMessages(
		[]domain.Machine{{ID: "m1", State: domain.Ready(), Since: now}},
		[]bmc.Status{{ID: "bmc-a", Reachable: true, ChangedAt: now}, {ID: "bmc-new"}},
		[]task.Task{{ID: "t1", Kind: "firmware-update", Status: task.Running}})
	var topics []string
	for _, m := range msgs {
		if !m.Retain || m.QoS != 1 {
			t.Errorf("%s: retain %v qos %d", m.Topic, m.Retain, m.QoS)
		}
		topics = append(topics, m.Topic)
	}
	want := "NICO/v1/machine/m1/state slipway/v1/bmc/bmc-a/state slipway/v1/task/t1"
	if got := strings.Join(topics, " "); got != want {
		t.Errorf("topics %s, want %s", got, want)
	}
}
