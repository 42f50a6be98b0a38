package swdeploy

import (
	"fmt"

	"slices"
	"strings"

	"github.com/slipway/slipway/appliance/release"
)

// Deploy states, as USM names them (its CLI shows them as deploy-<state>).
const (
	Start                   = "start"
	StartDone               = "start-done"
	StartFailed             = "start-failed"
	Host                    = "host"
	HostDone                = "host-done"
	HostFailed              = "host-failed"
	HostRollback            = "host-rollback"
	HostRollbackDone        = "host-rollback-done"
	HostRollbackFailed      = "host-rollback-failed"
	Activate                = "activate"
	ActivateDone            = "activate-done"
	ActivateFailed          = "activate-failed"
	ActivateRollback        = "activate-rollback"
	ActivateRollbackPending = "activate-rollback-pending"
	ActivateRollbackDone    = "activate-rollback-done"
	ActivateRollbackFailed  = "activate-rollback-failed"
	Completed               = "completed"
)

// Deploy-host states, as USM names them (deploy-host-<state>).
const (
	HostPending           = "pending"
	HostDeploying         = "deploying"
	HostDeployed          = "deployed"
	HostFailedState       = "failed"
	HostRollbackPending   = "rollback-pending"
	HostRollbackDeploying = "rollback-deploying"
	HostRollbackDeployed  = "rollback-deployed"
	HostRollbackFailedSt  = "rollback-failed"
)

// Operation is what an operator asks of a deploy.
type Operation string

// The operations, as USM's endpoints name them.
const (
	OpStart            Operation = "start"
	OpHost             Operation = "host"
	OpHostRollback     Operation = "host rollback"
	OpActivate         Operation = "activate"
	OpActivateRollback Operation = "activate_rollback"
	OpComplete         Operation = "complete"
	OpAbort            Operation = "abort"
	OpDelete           Operation = "delete"
)

// allowed is USM's table: the deploy states each operation may start from.
var allowed = map[Operation][]string{
	OpHost:             {StartDone, Host, HostFailed},
	OpHostRollback:     {ActivateRollbackDone, HostRollback, HostRollbackFailed},
	OpActivate:         {HostDone, ActivateFailed},
	OpActivateRollback: {ActivateRollbackPending, ActivateRollbackFailed},
	OpComplete:         {ActivateDone},
	OpAbort:            {Host, HostDone, HostFailed, Activate, ActivateDone, ActivateFailed, Completed},
	OpDelete:           {StartDone, StartFailed, HostRollbackDone, Completed},
}

// refusals are USM's words for an operation refused in the deploy's state.
var refusals = map[Operation]string{
	OpHost:             "Host deployment is only allowed when the current deployment state is %s",
	OpHostRollback:     "Host rollback is only allowed when the current deployment state is %s",
	OpActivate:         "Activate deployment only when current deployment state is %s",
	OpActivateRollback: "Activate-rollback deployment only when current deployment state is %s",
	OpComplete:         "Deploy must be in activate-done state to be able to complete.",
	OpAbort:            "Abort is only allowed when the current deployment state is %s",
	OpDelete:           "Delete is only allowed when the current deployment state is %s",
}

// Refusal is an operation USM refuses (its 406), in USM's words: the one
// type releases and deploys share, so that a door maps one.
type Refusal = release.Refusal

// Check says whether op may run while the deploy is in state (""
// for no deploy).
func Check(op Operation, state string) error {
	if op == OpStart {
		if state != "" {
			return Refusal(fmt.Sprintf("There is already a deployment in progress (%s). Please complete/delete the current deployment.", state))
		}
		return nil
	}
	if state == "" {
		return Refusal("No deployment in progress")
	}
	if !slices.Contains(allowed[op], state) {
		msg := refusals[op]
		if strings.Contains(msg, "%s") {
			msg = fmt.Sprintf(msg, strings.Join(allowed[op], ", "))
		}
		return Refusal(msg)
	}
	return nil
}

// Aggregate is the deploy state its hosts add up to, while hosts are
// being deployed (rollback false) or rolled back: any host failed gives
// the failed state, every host done the done state.
func Aggregate(hosts []string, rollback bool) string {
	failed, done, busy := HostFailedState, HostDeployed, Host
	failedAll, doneAll := HostFailed, HostDone
	if rollback {
		failed, done, busy = HostRollbackFailedSt, HostRollbackDeployed, HostRollback
		failedAll, doneAll = HostRollbackFailed, HostRollbackDone
	}
	if slices.Contains(hosts, failed) {
		return failedAll
	}
	if len(hosts) > 0 && !slices.ContainsFunc(hosts, func(h string) bool { return h != done }) {
		return doneAll
	}
	return busy
}

// Aborted is where abort sends a deploy in state: before activation its
// hosts are rolled back; after, the activation is.
func Aborted(state string) string {
	switch state {
	case Activate, ActivateDone, ActivateFailed, Completed:
		return ActivateRollbackPending
	}
	return HostRollback
}

// AbortedHost is where abort sends a host: one never deployed has nothing
// to roll back.
func AbortedHost(state string) string {
	if state == HostPending {
		return HostRollbackDeployed
	}
	return HostRollbackPending
}

// HostMayDeploy says whether a host in state may be deployed (again).
func HostMayDeploy(state string) bool { return state == HostPending || state == HostFailedState }

// HostMayRollBack says whether a host in state may be rolled back (again).
func HostMayRollBack(state string) bool {
	return state == HostRollbackPending || state == HostRollbackFailedSt
}
