package domain

import (
	"fmt"
	"slices"
	"strings"
)

// Stage is one step of a node's onboarding, reported by heartbeat. Stages
// come in this order; a node may skip some.
type Stage string

// The onboarding stages.
const (
	StageBoot      Stage = "boot"       // the installer's kernel is up and on the network
	StageCloudInit Stage = "cloud-init" // cloud-init fetched its data and is running
	StageDisk      Stage = "disk"       // partitioning, formatting, writing the image
	StageInstall   Stage = "install"    // installing the OS and packages
	StageConfigure Stage = "configure"  // configuring the installed system
	StageValidate  Stage = "validate"   // checking hardware and the installed system
	StageComplete  Stage = "complete"   // onboarding finished (phase done: the machine is ready)
)

// Stages lists every stage in order.
var Stages = []Stage{StageBoot, StageCloudInit, StageDisk, StageInstall, StageConfigure, StageValidate, StageComplete}

// Phase is where a node is within a stage.
type Phase string

// The phases of a stage.
const (
	PhaseStarted Phase = "started"
	PhaseRunning Phase = "running" // progress inside a long stage; detail says what
	PhaseDone    Phase = "done"
	PhaseFailed  Phase = "failed" // detail says why; the machine moves to failed
)

// Phases lists every phase.
var Phases = []Phase{PhaseStarted, PhaseRunning, PhaseDone, PhaseFailed}

// EnumError is a value outside its enumeration; it lists what is allowed.
type EnumError struct {
	Field   string
	Value   string
	Allowed []string
}

func (e *EnumError) Error() string {
	return fmt.Sprintf("%s: %q is not one of %s", e.Field, e.Value, strings.Join(e.Allowed, ", "))
}

// ParseStage checks s against the stage enumeration.
func ParseStage(s string) (Stage, error) { return parseEnum("stage", s, Stages) }

// ParsePhase checks s against the phase enumeration.
func ParsePhase(s string) (Phase, error) { return parseEnum("phase", s, Phases) }

func parseEnum[T ~string](field, s string, allowed []T) (T, error) {
	if slices.Contains(allowed, T(s)) {
		return T(s), nil
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return "", &EnumError{Field: field, Value: s, Allowed: names}
}

// validationStages are the stages that make up "validation"; their index
// is the progress Validating reports.
var validationStages = []Stage{StageDisk, StageInstall, StageConfigure, StageValidate, StageComplete}

// progress says how many validation stages are behind a node that reports
// stage in phase.
func progress(stage Stage, phase Phase) uint {
	i := slices.Index(validationStages, stage)
	if phase == PhaseDone {
		i++
	}
	return uint(max(i, 0))
}
