package domain

import (
	"encoding/json"
	"fmt"
	"time"
)

// State is a machine's lifecycle state: one ManagedHostState of NICo's
// schema (managed-host-state-change.schema.json), encoded exactly as the
// schema has it. Only the fields of the top-level state in use are set.
type State struct {
	State string `json:"state"`

	// hostinit
	MachineState *SubState `json:"machine_state,omitempty"`
	// validation
	ValidationState *ValidationState `json:"validation_state,omitempty"`
	// assigned
	InstanceState *SubState `json:"instance_state,omitempty"`
	// waitingforcleanup
	CleanupState *SubState `json:"cleanup_state,omitempty"`
	// hostreprovision: a bare string ("checkingfirmware") or an object.
	ReprovisionState json.RawMessage `json:"reprovision_state,omitempty"`
	// dpureprovision: each DPU's reprovision state, by DPU machine id.
	DPUStates *DPUStates `json:"dpu_states,omitempty"`
	// failed
	Details   *FailureDetails `json:"details,omitempty"`
	MachineID string          `json:"machine_id,omitempty"`
	// failed, hostreprovision
	RetryCount *uint32 `json:"retry_count,omitempty"`
}

// Top-level state names Slipway drives machines through.
const (
	StateCreated           = "created"
	StateHostInit          = "hostinit"
	StateValidation        = "validation"
	StateReady             = "ready"
	StateAssigned          = "assigned"
	StateHostReprovision   = "hostreprovision"
	StateDPUReprovision    = "dpureprovision"
	StateWaitingForCleanup = "waitingforcleanup"
	StateFailed            = "failed"
	StateForceDeletion     = "forcedeletion"
)

// hostinit sub-states (MachineState) Slipway uses.
const (
	HostInitInit                = "init"
	HostInitWaitingForDiscovery = "waitingfordiscovery"
	HostInitDiscovered          = "discovered"
)

// SubState is the {"state": "..."} object several states nest.
type SubState struct {
	State string `json:"state"`
}

// ValidationState is the validation_state of "validation": machine
// validation with its progress.
type ValidationState struct {
	ValidationType    string            `json:"validation_type"` // always "machinevalidation"
	MachineValidation MachineValidation `json:"machine_validation"`
}

// MachineValidation is the schema's MachineValidatingState; Slipway uses its
// "machinevalidating" form, which carries progress.
type MachineValidation struct {
	Validating *Validating `json:"machinevalidating,omitempty"`
}

// Validating is how far an onboarding run has come: Completed of Total
// stages, Context names the stage now running, ID names the run.
type Validating struct {
	Completed uint   `json:"completed"`
	Total     uint   `json:"total"`
	Context   string `json:"context"`
	ID        string `json:"id"` // a UUID, one per onboarding run
}

// FailureDetails say why, when and where a machine failed.
type FailureDetails struct {
	Cause    FailureCause  `json:"cause"`
	FailedAt time.Time     `json:"failed_at"`
	Source   FailureSource `json:"source"`
}

// FailureCause is one of the schema's causes: a kind (discovery,
// machinevalidation, reprovisioning, unhandledstate, …) and an error text.
type FailureCause struct {
	Kind string
	Err  string
}

// MarshalJSON encodes the cause as the schema has it: {"<kind>": {"err": "..."}}.
func (c FailureCause) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]map[string]string{c.Kind: {"err": c.Err}})
}

// UnmarshalJSON reads {"<kind>": {"err": "..."}}, or the bare "noerror".
func (c *FailureCause) UnmarshalJSON(b []byte) error {
	var bare string
	if json.Unmarshal(b, &bare) == nil {
		*c = FailureCause{Kind: bare}
		return nil
	}
	var m map[string]struct {
		Err string `json:"err"`
	}
	if err := json.Unmarshal(b, &m); err != nil || len(m) != 1 {
		return fmt.Errorf("failure cause %s: want one {\"kind\": {\"err\": ...}}", b)
	}
	for k, v := range m {
		*c = FailureCause{Kind: k, Err: v.Err}
	}
	return nil
}

// FailureSource is who noticed the failure: "scout" (the node itself, by
// heartbeat), "statemachine", or a state machine area (hostinit, mainflow, …).
type FailureSource struct {
	Name string // scout | statemachine | noerror
	Area string // set instead of Name: default | hostinit | mainflow | assignedinstance
}

// MarshalJSON encodes the source as a bare name or {"statemachinearea": area}.
func (s FailureSource) MarshalJSON() ([]byte, error) {
	if s.Area != "" {
		return json.Marshal(map[string]string{"statemachinearea": s.Area})
	}
	return json.Marshal(s.Name)
}

// UnmarshalJSON reads either form.
func (s *FailureSource) UnmarshalJSON(b []byte) error {
	if json.Unmarshal(b, &s.Name) == nil {
		return nil
	}
	var m struct {
		Area string `json:"statemachinearea"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("failure source %s: %w", b, err)
	}
	s.Area = m.Area
	return nil
}

// Constructors for the states Slipway enters.

// Created is where every machine starts.
func Created() State { return State{State: StateCreated} }

// HostInit is hostinit with the given machine_state ("init", "waitingfordiscovery", "discovered").
func HostInit(sub string) State {
	return State{State: StateHostInit, MachineState: &SubState{State: sub}}
}

// Validation is validation with the run's progress.
func Validation(v Validating) State {
	return State{State: StateValidation, ValidationState: &ValidationState{
		ValidationType: "machinevalidation", MachineValidation: MachineValidation{Validating: &v}}}
}

// Ready is a machine onboarded and ready for use.
func Ready() State { return State{State: StateReady} }

// Assigned is a machine handed to a user; its instance is ready.
func Assigned() State {
	return State{State: StateAssigned, InstanceState: &SubState{State: "ready"}}
}

// WaitingForCleanup is a released machine being cleaned.
func WaitingForCleanup() State {
	return State{State: StateWaitingForCleanup, CleanupState: &SubState{State: "hostcleanup"}}
}

// Failed is a failed machine with why, when and who noticed.
func Failed(machineID string, cause FailureCause, source FailureSource, at time.Time) State {
	zero := uint32(0)
	return State{State: StateFailed, MachineID: machineID, RetryCount: &zero,
		Details: &FailureDetails{Cause: cause, FailedAt: at.UTC(), Source: source}}
}

// ForceDeletion is a machine an operator removes from management.
func ForceDeletion() State { return State{State: StateForceDeletion} }

// Label names the state and its sub-state, e.g. "hostinit/discovered" or
// "validation/install": what logs, metrics and the console show.
func (s State) Label() string {
	switch {
	case s.MachineState != nil:
		return s.State + "/" + s.MachineState.State
	case s.ValidationState != nil && s.ValidationState.MachineValidation.Validating != nil:
		return s.State + "/" + s.ValidationState.MachineValidation.Validating.Context
	case s.InstanceState != nil:
		return s.State + "/" + s.InstanceState.State
	case s.CleanupState != nil:
		return s.State + "/" + s.CleanupState.State
	case s.Details != nil:
		return s.State + "/" + s.Details.Cause.Kind
	case len(s.ReprovisionState) > 0:
		return s.State + "/" + Reprovision(s.ReprovisionState).name()
	case s.DPUStates != nil:
		return s.State + "/" + s.DPUStates.names()
	}
	return s.State
}

// sub is the hostinit sub-state, "" for other states.
func (s State) sub() string {
	if s.MachineState == nil {
		return ""
	}
	return s.MachineState.State
}

// JSON encodes the state as stored and published.
func (s State) JSON() string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("encode state %s: %v", s.State, err)) // only plain fields: cannot fail
	}
	return string(b)
}

// ParseState decodes a stored state.
func ParseState(s string) (State, error) {
	var st State
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		return st, fmt.Errorf("stored state %q: %w", s, err)
	}
	if st.State == "" {
		return st, fmt.Errorf("stored state %q has no state name", s)
	}
	return st, nil
}
