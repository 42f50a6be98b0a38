package domain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// EventKind is what happened to a machine. Each kind moves a machine from
// the states its rule lists to one state; from any other state it is
// illegal.
type EventKind string

// The events that drive the lifecycle.
const (
	// From the doors, as a node netboots.
	EventDHCPLease     EventKind = "dhcp-lease"         // the machine got an address
	EventBootConfig    EventKind = "boot-config-served" // its iPXE script or GRUB config was served
	EventCloudInit     EventKind = "cloud-init-served"  // its cloud-init user-data was served
	EventStageEarly    EventKind = "heartbeat-early"    // heartbeat: boot or cloud-init, not failed
	EventStageProgress EventKind = "heartbeat-progress" // heartbeat: disk … complete, not failed, not complete/done
	EventStageComplete EventKind = "heartbeat-complete" // heartbeat: complete/done
	EventStageFailed   EventKind = "heartbeat-failed"   // heartbeat: any stage, phase failed
	// From the appliance itself.
	EventTimeout EventKind = "timeout" // the machine stayed in its state past the configured limit
	// From an operator.
	EventProvision   EventKind = "provision"    // (re)install the machine: it should netboot now
	EventAssign      EventKind = "assign"       // hand a ready machine to its user
	EventRelease     EventKind = "release"      // take it back; it is cleaned
	EventCleaned     EventKind = "cleanup-done" // cleaning finished
	EventForceDelete EventKind = "force-delete" // stop managing the machine
	// From a firmware update task.
	EventFirmwareStart EventKind = "firmware-update-started" // an update of the machine's firmware begins
	EventFirmwareStep  EventKind = "firmware-update-step"    // it moved to another step (Event.Reprovision)
	EventFirmwareDone  EventKind = "firmware-update-done"    // the new version is reported

	EventDPUStart EventKind = "dpu-reprovision-started" // the host's DPUs are to be reinstalled
	EventDPUStep  EventKind = "dpu-reprovision-step"    // a DPU moved to another step (Event.DPUStates)
	EventDPUDone  EventKind = "dpu-reprovision-done"    // every DPU runs its new OS
)

// Event is one thing that happened to a machine, with the words the
// machine's history will keep.
type Event struct {
	Kind  EventKind
	Cause string // why, in words: "iPXE script served", "heartbeat install/done"
	// For heartbeats.
	Stage  Stage
	Phase  Phase
	Detail string
	// For firmware updates: the reprovision state to enter, and whether
	// the machine was ready before (it returns to ready, else to created:
	// known, not installed).
	Reprovision Reprovision
	WasReady    bool
	// For DPU reprovisioning: each DPU's state to enter, by its machine id.
	DPUStates map[string]Reprovision
}

// HeartbeatEvent classifies a heartbeat into the event it is for the lifecycle.
func HeartbeatEvent(stage Stage, phase Phase, detail string) Event {
	ev := Event{Stage: stage, Phase: phase, Detail: detail, Cause: fmt.Sprintf("heartbeat %s/%s", stage, phase)}
	if detail != "" {
		ev.Cause += ": " + detail
	}
	switch {
	case phase == PhaseFailed:
		ev.Kind = EventStageFailed
	case stage == StageBoot || stage == StageCloudInit:
		ev.Kind = EventStageEarly
	case stage == StageComplete && phase == PhaseDone:
		ev.Kind = EventStageComplete
	default:
		ev.Kind = EventStageProgress
	}
	return ev
}

// rule is one line of the lifecycle: on this event, from these states
// ("hostinit" means any hostinit sub-state, "hostinit/init" only that one),
// go to the state next computes.
type rule struct {
	on   EventKind
	from []string
	next func(m Machine, ev Event, now time.Time) State
}

// Machine is a machine's identity and state as the lifecycle sees it.
type Machine struct {
	ID    string
	State State
	Since time.Time
}

// onboarding are the states an installer's heartbeats move a machine in.
// A ready (or assigned) machine is not one of them: it netboots to its local
// disk, and a stray early heartbeat must not send it back to onboarding.
var onboarding = []string{StateCreated, StateHostInit, StateValidation, StateFailed, StateHostReprovision}

// rules is the whole lifecycle; docs/lifecycle.md draws it.
var rules = []rule{
	{EventDHCPLease, []string{StateCreated}, fixed(HostInit(HostInitInit))},
	{EventBootConfig, []string{StateCreated, "hostinit/init"}, fixed(HostInit(HostInitWaitingForDiscovery))},
	{EventCloudInit, []string{StateCreated, "hostinit/init", "hostinit/waitingfordiscovery"}, fixed(HostInit(HostInitDiscovered))},
	{EventStageEarly, onboarding, fixed(HostInit(HostInitDiscovered))},
	{EventStageProgress, onboarding, validating},
	{EventStageComplete, []string{StateHostInit, StateValidation}, fixed(Ready())},
	{EventStageFailed, onboarding, failedByHeartbeat},
	{EventTimeout, []string{StateHostInit, StateValidation, StateHostReprovision, StateWaitingForCleanup}, timedOut},
	{EventProvision, []string{StateCreated, StateHostInit, StateValidation, StateReady, StateFailed, StateWaitingForCleanup, StateHostReprovision, StateDPUReprovision},
		fixed(HostInit(HostInitWaitingForDiscovery))},
	{EventFirmwareStart, []string{StateCreated, StateReady, StateFailed, StateHostReprovision}, reprovisioning},
	{EventFirmwareStep, []string{StateHostReprovision}, reprovisioning},
	{EventFirmwareDone, []string{StateHostReprovision}, reprovisioned},
	// A DPU reprovisioning that failed stays in dpureprovision with its
	// cause until it is started again (or the host is provisioned).
	{EventDPUStart, []string{StateCreated, StateReady, StateFailed, StateDPUReprovision}, dpuReprovisioning},
	{EventDPUStep, []string{StateDPUReprovision}, dpuReprovisioning},
	{EventDPUDone, []string{StateDPUReprovision}, reprovisioned},
	{EventAssign, []string{StateReady}, fixed(Assigned())},
	{EventRelease, []string{StateAssigned}, fixed(WaitingForCleanup())},
	{EventCleaned, []string{StateWaitingForCleanup}, fixed(Ready())},
	{EventForceDelete, []string{StateCreated, StateHostInit, StateValidation, StateReady, StateAssigned, StateFailed,
		StateWaitingForCleanup, StateHostReprovision, StateDPUReprovision}, fixed(ForceDeletion())},
}

func fixed(s State) func(Machine, Event, time.Time) State {
	return func(Machine, Event, time.Time) State { return s }
}

// validating keeps one run id while a node moves through the validation
// stages, and starts a new run when it enters them afresh.
func validating(m Machine, ev Event, _ time.Time) State {
	v := Validating{Completed: progress(ev.Stage, ev.Phase), Total: uint(len(validationStages)), Context: string(ev.Stage)}
	if cur := m.State.ValidationState; cur != nil && cur.MachineValidation.Validating != nil {
		v.ID = cur.MachineValidation.Validating.ID
	} else {
		v.ID = uuid.NewString()
	}
	return Validation(v)
}

// reprovisioning enters the reprovision state the event names.
func reprovisioning(_ Machine, ev Event, _ time.Time) State { return HostReprovision(ev.Reprovision) }

// dpuReprovisioning enters dpureprovision with the DPU states the event names.
func dpuReprovisioning(_ Machine, ev Event, _ time.Time) State { return DPUReprovision(ev.DPUStates) }

// reprovisioned returns a machine whose firmware was updated to ready if
// it was ready before; a machine that was not installed is known again.
func reprovisioned(_ Machine, ev Event, _ time.Time) State {
	if ev.WasReady {
		return Ready()
	}
	return Created()
}

// failedByHeartbeat blames discovery for a node that fails before its
// install starts, validation after; the node itself (scout) reported it.
func failedByHeartbeat(m Machine, ev Event, now time.Time) State {
	kind := "machinevalidation"
	if ev.Stage == StageBoot || ev.Stage == StageCloudInit {
		kind = "discovery"
	}
	msg := fmt.Sprintf("stage %s failed", ev.Stage)
	if ev.Detail != "" {
		msg += ": " + ev.Detail
	}
	return Failed(m.ID, FailureCause{Kind: kind, Err: msg}, FailureSource{Name: "scout"}, now)
}

// timeoutBlame says, per state that can time out, which failure cause and
// which state machine area a timeout there is blamed on.
var timeoutBlame = map[string]struct{ cause, area string }{
	StateHostInit:          {"discovery", "hostinit"},
	StateValidation:        {"machinevalidation", "mainflow"},
	StateHostReprovision:   {"reprovisioning", "mainflow"},
	StateWaitingForCleanup: {"unhandledstate", "assignedinstance"},
}

// timedOut fails a machine that stayed too long in its state.
func timedOut(m Machine, ev Event, now time.Time) State {
	blame := timeoutBlame[m.State.State]
	return Failed(m.ID, FailureCause{Kind: blame.cause, Err: ev.Cause}, FailureSource{Area: blame.area}, now)
}

// ErrNoChange means the event is legal in the machine's state but leaves
// it where it is (a second cloud-init fetch, a repeated heartbeat).
var ErrNoChange = errors.New("no state change")

// IllegalTransitionError is an event that the machine's state does not allow.
type IllegalTransitionError struct {
	MachineID string
	From      string    // the state's label
	Event     EventKind // what was tried
	Allowed   []EventKind
}

func (e *IllegalTransitionError) Error() string {
	allowed := make([]string, len(e.Allowed))
	for i, k := range e.Allowed {
		allowed[i] = string(k)
	}
	return fmt.Sprintf("machine %s is %s: %s is not allowed there (allowed: %s)", e.MachineID, e.From, e.Event, strings.Join(allowed, ", "))
}

// Next decides where ev takes m. It returns ErrNoChange when the event is
// legal but changes nothing, and an *IllegalTransitionError when the state
// does not allow it. It does no I/O, so the whole lifecycle is testable as
// a table.
func Next(m Machine, ev Event, now time.Time) (State, error) {
	next, _, err := decide(m, "", ev, now)
	return next, err
}

// decide is Next for a caller that may know m's state encoded (curJSON;
// "" if not) and will store the next state: it returns that encoded too,
// so that a move encodes each state once.
func decide(m Machine, curJSON string, ev Event, now time.Time) (State, string, error) {
	for _, r := range rules {
		if r.on != ev.Kind || !matches(r.from, m.State) {
			continue
		}
		next := r.next(m, ev, now)
		nextJSON := next.JSON()
		if curJSON == "" {
			curJSON = m.State.JSON()
		}
		if nextJSON == curJSON {
			return m.State, curJSON, ErrNoChange
		}
		return next, nextJSON, nil
	}
	return m.State, curJSON, &IllegalTransitionError{MachineID: m.ID, From: m.State.Label(), Event: ev.Kind, Allowed: Allowed(m.State)}
}

// Allowed lists the events m's state allows.
func Allowed(s State) []EventKind {
	var out []EventKind
	for _, r := range rules {
		if matches(r.from, s) && !slices.Contains(out, r.on) {
			out = append(out, r.on)
		}
	}
	return out
}

func matches(from []string, s State) bool {
	return slices.Contains(from, s.State) || (s.sub() != "" && slices.Contains(from, s.State+"/"+s.sub()))
}
