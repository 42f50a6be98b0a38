package wiring

import (
	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/broker"
)

// currentMessages are the retained messages the bus starts with: every
// machine's state, every BMC's status, every unfinished and recent task.
// Quiet BMCs and machines publish nothing more until they change.
func currentMessages(machines []domain.Machine, bmcs []bmc.Status, tasks []task.Task) []outbox.Message {
	var events broker.Events
	out := make([]outbox.Message, 0, len(machines)+len(bmcs)+len(tasks))
	for _, m := range machines {
		out = append(out, events.StateMessage(m.ID, m.State, "", m.Since))
	}
	for _, s := range bmcs {
		if !s.ChangedAt.IsZero() { // never polled yet: its first poll will say
			out = append(out, events.BMCMessage(s))
		}
	}
	for _, t := range tasks {
		out = append(out, events.TaskMessage(t))
	}
	return out
}
