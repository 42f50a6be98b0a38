package swdeploy

import (
	"strings"
	"testing"
)

var everyState = []string{"", Start, StartDone, StartFailed, Host, HostDone, HostFailed, HostRollback, HostRollbackDone, HostRollbackFailed,
	Activate, ActivateDone, ActivateFailed, ActivateRollback, ActivateRollbackPending, ActivateRollbackDone, ActivateRollbackFailed, Completed}

// USM's table of what is allowed when, as the contract states it, tried
// against every state.
func TestEveryOperationInEveryState(t *testing.T) {
	for _, tc := range []struct {
		op      Operation
		allowed string // the states it may run in, as the contract lists them
		refusal string // part of its refusal
	}{
		{OpStart, "-", "There is already a deployment in progress"},
		{OpHost, "start-done host host-failed", "Host deployment is only allowed"},
		{OpHostRollback, "activate-rollback-done host-rollback host-rollback-failed", "Host rollback is only allowed"},
		{OpActivate, "host-done activate-failed", "Activate deployment only when current deployment state is host-done, activate-failed"},
		{OpActivateRollback, "activate-rollback-pending activate-rollback-failed", "Activate-rollback deployment only when"},
		{OpComplete, "activate-done", "Deploy must be in activate-done state to be able to complete."},
		{OpAbort, "host host-done host-failed activate activate-done activate-failed completed", "Abort is only allowed"},
		{OpDelete, "start-done start-failed host-rollback-done completed", "Delete is only allowed"},
	} {
		ok := map[string]bool{}
		for _, s := range strings.Fields(tc.allowed) {
			ok[strings.Trim(s, "-")] = true
		}
		for _, state := range everyState {
			err := Check(tc.op, state)
			switch {
			case ok[state] && err != nil:
				t.Errorf("%s in %q: refused: %v", tc.op, state, err)
			case !ok[state] && err == nil:
				t.Errorf("%s in %q: allowed", tc.op, state)
			case !ok[state] && state != "" && !strings.Contains(err.Error(), tc.refusal):
				t.Errorf("%s in %q: %q, want it to say %q", tc.op, state, err, tc.refusal)
			}
		}
	}
	if err := Check(OpActivate, ""); err == nil || err.Error() != "No deployment in progress" {
		t.Errorf("no deploy: %v", err)
	}
}

func TestAggregateAbortAndHosts(t *testing.T) {
	for _, tc := range []struct {
		hosts    string
		rollback bool
		want     string
	}{
		{"pending pending", false, Host},
		{"deployed deploying", false, Host},
		{"deployed failed pending", false, HostFailed},
		{"deployed deployed", false, HostDone},
		{"rollback-deployed rollback-pending", true, HostRollback},
		{"rollback-deployed rollback-failed", true, HostRollbackFailed},
		{"rollback-deployed rollback-deployed", true, HostRollbackDone},
		{"", false, Host},
	} {
		if got := Aggregate(strings.Fields(tc.hosts), tc.rollback); got != tc.want {
			t.Errorf("%q rollback=%v: %s, want %s", tc.hosts, tc.rollback, got, tc.want)
		}
	}
	for state, want := range map[string]string{Host: HostRollback, HostDone: HostRollback, HostFailed: HostRollback,
		Activate: ActivateRollbackPending, ActivateDone: ActivateRollbackPending, ActivateFailed: ActivateRollbackPending, Completed: ActivateRollbackPending} {
		if got := Aborted(state); got != want {
			t.Errorf("abort in %s: %s, want %s", state, got, want)
		}
	}
	if AbortedHost(HostPending) != HostRollbackDeployed || AbortedHost(HostDeployed) != HostRollbackPending || AbortedHost(HostFailedState) != HostRollbackPending {
		t.Error("abort's host states")
	}
	for state, want := range map[string][2]bool{HostPending: {true, false}, HostFailedState: {true, false}, HostDeployed: {false, false},
		HostRollbackPending: {false, true}, HostRollbackFailedSt: {false, true}, HostRollbackDeployed: {false, false}} {
		if HostMayDeploy(state) != want[0] || HostMayRollBack(state) != want[1] {
			t.Errorf("host %s: deploy %v rollback %v", state, HostMayDeploy(state), HostMayRollBack(state))
		}
	}
}
