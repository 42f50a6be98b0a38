package broker

import (
	"encoding/json"
	"time"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/config"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/outbox"
	"github.com/slipway/slipway/appliance/swdeploy"
	"github.com/slipway/slipway/appliance/task"
)

// Topics Slipway publishes on. Only Slipway publishes under these prefixes.
const (
	// NICoPrefix is NICo's event bus: NICO/v1/machine/{machineId}/state.
	NICoPrefix = config.NICoTopicPrefix
	// SlipwayPrefix is Slipway's own events: slipway/v1/machine/{machineId}/onboarding.
	SlipwayPrefix = config.SlipwayTopicPrefix
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
// every machine's current state. encoded is s as JSON if the caller has it
// ("" if not): the one writer has, for every heartbeat of a booting site.
func (Events) StateMessage(machineID string, s domain.State, encoded string, at time.Time) outbox.Message {
	if encoded == "" {
		encoded = s.JSON()
	}
	return event(StateTopic(machineID), stateChangeWire{MachineID: machineID, Timestamp: at.UTC(), ManagedHostState: json.RawMessage(encoded)})
}

// stateChangeWire is StateChangeMessage with its state already encoded.
type stateChangeWire struct {
	MachineID        string          `json:"machine_id"`
	Timestamp        time.Time       `json:"timestamp"`
	ManagedHostState json.RawMessage `json:"managed_host_state"`
}

// StageMessage is a heartbeat: QoS 1, retained (the latest per machine).
func (Events) StageMessage(r domain.StageReport) outbox.Message {
	return event(OnboardingTopic(r.MachineID), OnboardingMessage{MachineID: r.MachineID, MAC: string(r.MAC), IP: r.ClientIP,
		Stage: string(r.Stage), Phase: string(r.Phase), Detail: r.Detail, Timestamp: r.At.UTC(), State: r.State.Label()})
}

// GoneMessages clear a deleted machine's retained state and onboarding
// messages (an empty retained message deletes the retained one).
func (e Events) GoneMessages(machineID string) []outbox.Message {
	return []outbox.Message{cleared(StateTopic(machineID)), e.OnboardingClearedMessage(machineID)}
}

// OnboardingClearedMessage clears a machine's retained last heartbeat,
// when an operator resets its onboarding record.
func (Events) OnboardingClearedMessage(machineID string) outbox.Message {
	return cleared(OnboardingTopic(machineID))
}

// cleared is the empty retained message that deletes a topic's retained one.
func cleared(topic string) outbox.Message {
	return outbox.Message{Topic: topic, Payload: []byte{}, QoS: 1, Retain: true}
}

// BMCPayload is a BMC's status as the bus carries it: never its
// credentials.
type BMCPayload struct {
	ID        string           `json:"bmc_id"`
	Endpoint  string           `json:"endpoint"`
	Insecure  bool             `json:"insecure_skip_verify,omitempty"`
	MachineID string           `json:"machine_id,omitempty"`
	LinkedBy  string           `json:"linked_by,omitempty"`
	Source    string           `json:"source"`
	Reachable bool             `json:"reachable"`
	LastError string           `json:"last_error,omitempty"`
	Inventory InventoryPayload `json:"inventory"`
	ChangedAt time.Time        `json:"changed_at,omitzero"`
}

// InventoryPayload is what the BMC's last poll found.
type InventoryPayload struct {
	System       string            `json:"system,omitempty"`
	PowerState   string            `json:"power_state,omitempty"`
	Health       string            `json:"health,omitempty"`
	Manufacturer string            `json:"manufacturer,omitempty"`
	Model        string            `json:"model,omitempty"`
	Serial       string            `json:"serial,omitempty"`
	BIOSVersion  string            `json:"bios_version,omitempty"`
	BMCVersion   string            `json:"bmc_version,omitempty"`
	BootMode     string            `json:"boot_mode,omitempty"`
	MACs         []string          `json:"macs,omitempty"`
	Firmware     []FirmwarePayload `json:"firmware,omitempty"`
	// Auth is how Slipway logs in (session or basic); Missing, the parts
	// the BMC could not give.
	Auth    string   `json:"auth,omitempty"`
	Missing []string `json:"missing,omitempty"`
}

// FirmwarePayload is one member of the BMC's firmware inventory.
type FirmwarePayload struct {
	ID         string `json:"id"`
	Name       string `json:"name,omitempty"`
	Version    string `json:"version"`
	Updateable bool   `json:"updateable"`
}

// BMCMessage is a BMC's changed status: QoS 1, retained.
func (Events) BMCMessage(s bmc.Status) outbox.Message {
	i := s.Inventory
	inv := InventoryPayload{System: i.System, PowerState: i.PowerState, Health: i.Health, Manufacturer: i.Manufacturer,
		Model: i.Model, Serial: i.Serial, BIOSVersion: i.BIOSVersion, BMCVersion: i.BMCVersion, BootMode: i.BootMode, MACs: i.MACs,
		Auth: i.Auth, Missing: i.Missing}
	for _, f := range i.Firmware {
		inv.Firmware = append(inv.Firmware, FirmwarePayload{ID: f.ID, Name: f.Name, Version: f.Version, Updateable: f.Updateable})
	}
	return event(BMCTopic(s.ID), BMCPayload{ID: s.ID, Endpoint: s.Endpoint, Insecure: s.Insecure, MachineID: s.MachineID,
		LinkedBy: s.LinkedBy, Source: s.Source, Reachable: s.Reachable, LastError: s.LastError, Inventory: inv, ChangedAt: s.ChangedAt})
}

// BMCGoneMessage clears a removed BMC's retained status.
func (Events) BMCGoneMessage(bmcID string) outbox.Message { return cleared(BMCTopic(bmcID)) }

// TaskPayload is a task as the bus carries it: its params and result as
// the JSON objects they are.
type TaskPayload struct {
	ID         string          `json:"task_id"`
	Kind       string          `json:"kind"`
	MachineID  string          `json:"machine_id,omitempty"`
	Status     string          `json:"status"`
	Step       string          `json:"step"`
	Progress   int             `json:"progress"`
	Message    string          `json:"message"`
	Params     json.RawMessage `json:"params"`
	Result     json.RawMessage `json:"result"`
	CreatedAt  time.Time       `json:"created_at,omitzero"`
	UpdatedAt  time.Time       `json:"updated_at,omitzero"`
	FinishedAt time.Time       `json:"finished_at,omitzero"`
}

// TaskMessage is a task's new step or progress: QoS 1, retained.
func (Events) TaskMessage(t task.Task) outbox.Message {
	return event(TaskTopic(t.ID), TaskPayload{ID: t.ID, Kind: t.Kind, MachineID: t.MachineID, Status: t.Status, Step: t.Step,
		Progress: t.Progress, Message: t.Message, Params: t.Params, Result: t.Result,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, FinishedAt: t.FinishedAt})
}

// DeployTopic is where USM's deploy in progress is published, retained:
// its state and each host's, at every change; cleared when it is deleted.
const DeployTopic = "slipway/v1/usm/deploy"

// DeployPayload is the deploy as the bus carries it, in USM's words.
type DeployPayload struct {
	FromRelease    string              `json:"from_release"`
	ToRelease      string              `json:"to_release"`
	ReleaseID      string              `json:"release_id"`
	State          string              `json:"state"`
	RebootRequired bool                `json:"reboot_required"`
	Hosts          []DeployHostPayload `json:"hosts"`
}

// DeployHostPayload is one host of the deploy.
type DeployHostPayload struct {
	Hostname        string `json:"hostname"`
	MachineID       string `json:"machine_id"`
	SoftwareRelease string `json:"software_release"`
	TargetRelease   string `json:"target_release"`
	HostState       string `json:"host_state"`
	Error           string `json:"error,omitempty"`
}

// DeployMessage is the deploy's new state: QoS 1, retained.
func (Events) DeployMessage(d swdeploy.Deploy) outbox.Message {
	p := DeployPayload{FromRelease: d.FromVersion, ToRelease: d.ToVersion, ReleaseID: d.ToReleaseID, State: d.State,
		RebootRequired: d.RebootRequired, Hosts: []DeployHostPayload{}}
	for _, h := range d.Hosts {
		p.Hosts = append(p.Hosts, DeployHostPayload{Hostname: h.Hostname, MachineID: h.MachineID, SoftwareRelease: d.SoftwareRelease(h),
			TargetRelease: d.ToVersion, HostState: h.State, Error: h.Error})
	}
	return event(DeployTopic, p)
}

// DeployGoneMessage clears the deleted deploy's retained state.
func (Events) DeployGoneMessage() outbox.Message { return cleared(DeployTopic) }

func event(topic string, payload any) outbox.Message {
	b, err := json.Marshal(payload)
	if err != nil {
		panic("encode " + topic + ": " + err.Error()) // plain structs: cannot fail
	}
	return outbox.Message{Topic: topic, Payload: b, QoS: 1, Retain: true}
}
