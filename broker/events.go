package broker

import (
	"encoding/json"
	"time"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/store"
)

// Topics Slipway publishes on. Only Slipway publishes under these prefixes.
const (
	// NICoPrefix is NICo's event bus: NICO/v1/machine/{machineId}/state.
	NICoPrefix = "NICO/"
	// SlipwayPrefix is Slipway's own events: slipway/v1/machine/{machineId}/onboarding.
	SlipwayPrefix = "slipway/"
)

// StateTopic is where machine id's lifecycle state is published, retained.
func StateTopic(machineID string) string { return "NICO/v1/machine/" + machineID + "/state" }

// OnboardingTopic is where machine id's heartbeats are published; the last
// one is retained.
func OnboardingTopic(machineID string) string {
	return "slipway/v1/machine/" + machineID + "/onboarding"
}

// BMCTopic is where BMC id's status (reachability, power, inventory,
// firmware) is published, retained, each time a poll finds it changed.
func BMCTopic(bmcID string) string { return "slipway/v1/bmc/" + bmcID + "/state" }

// TaskTopic is where task id's progress is published, retained: firmware
// updates step by step.
func TaskTopic(taskID string) string { return "slipway/v1/task/" + taskID }

// StateChangeMessage is NICo's ManagedHostStateChangeMessage.
type StateChangeMessage struct {
	MachineID        string       `json:"machine_id"`
	Timestamp        time.Time    `json:"timestamp"`
	ManagedHostState domain.State `json:"managed_host_state"`
}

// OnboardingMessage is one heartbeat as the bus carries it.
type OnboardingMessage struct {
	MachineID string    `json:"machine_id"`
	MAC       string    `json:"mac"`
	IP        string    `json:"ip,omitempty"`
	Stage     string    `json:"stage"`
	Phase     string    `json:"phase"`
	Detail    string    `json:"detail,omitempty"`
	Timestamp time.Time `json:"timestamp"`
	// State is the machine's lifecycle state after the heartbeat, as a
	// label: "hostinit/discovered", "validation/install", "ready".
	State string `json:"state"`
}

// Events encodes the domain's changes as bus messages (domain.Announcer).
type Events struct{}

// StateMessage is a transition: QoS 1, retained, so a new subscriber sees
// every machine's current state.
func (Events) StateMessage(machineID string, s domain.State, at time.Time) store.Event {
	return event(StateTopic(machineID), StateChangeMessage{MachineID: machineID, Timestamp: at.UTC(), ManagedHostState: s})
}

// StageMessage is a heartbeat: QoS 1, retained (the latest per machine).
func (Events) StageMessage(r domain.StageReport) store.Event {
	return event(OnboardingTopic(r.MachineID), OnboardingMessage{MachineID: r.MachineID, MAC: string(r.MAC), IP: r.ClientIP,
		Stage: string(r.Stage), Phase: string(r.Phase), Detail: r.Detail, Timestamp: r.At.UTC(), State: r.State.Label()})
}

// GoneMessages clear a deleted machine's retained state and onboarding
// messages (an empty retained message deletes the retained one).
func (e Events) GoneMessages(machineID string) []store.Event {
	return []store.Event{cleared(StateTopic(machineID)), e.OnboardingClearedMessage(machineID)}
}

// OnboardingClearedMessage clears a machine's retained last heartbeat,
// when an operator resets its onboarding record.
func (Events) OnboardingClearedMessage(machineID string) store.Event {
	return cleared(OnboardingTopic(machineID))
}

// cleared is the empty retained message that deletes a topic's retained one.
func cleared(topic string) store.Event {
	return store.Event{Topic: topic, Payload: []byte{}, QoS: 1, Retain: true}
}

// BMCMessage is a BMC's changed status: QoS 1, retained. It never
// carries credentials (bmc.Status has none).
func (Events) BMCMessage(s bmc.Status) store.Event { return event(BMCTopic(s.ID), s) }

// BMCGoneMessage clears a removed BMC's retained status.
func (Events) BMCGoneMessage(bmcID string) store.Event { return cleared(BMCTopic(bmcID)) }

// TaskMessage is a task's new step or progress: QoS 1, retained.
func (Events) TaskMessage(t store.Task) store.Event { return event(TaskTopic(t.ID), t) }

func event(topic string, payload any) store.Event {
	b, err := json.Marshal(payload)
	if err != nil {
		panic("encode " + topic + ": " + err.Error()) // plain structs: cannot fail
	}
	return store.Event{Topic: topic, Payload: b, QoS: 1, Retain: true}
}
