package swdeploy

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway/slipway/appliance/release"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

// newService is a Service over a fresh store holding releases old (1.0.0,
// deployed), patch (1.0.1) and major (2.0.0).
func newService(t *testing.T) (*Service, *store.Store, *store.Committer) {
	t.Helper()
	db, commit := testkit.OpenStore(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	lib, err := release.NewLibrary(release.Config{Dir: filepath.Join(dir, "releases"), Staging: filepath.Join(dir, "staging"),
		DB: db, Commit: commit, Keys: &release.Keyring{}, MaxSize: 1 << 20, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for id, v := range map[string][2]string{"old": {"1.0.0", release.StateDeployed}, "patch": {"1.0.1", release.StateDeploying}, "major": {"2.0.0", release.StateDeploying}} {
		m, _ := json.Marshal(release.Manifest{ReleaseID: id, SWVersion: v[0]})
		if err := commit.Do(context.Background(), func(tx *store.Tx) error {
			return tx.CreateRelease(store.Release{ID: id, State: v[1], SWVersion: v[0], Manifest: string(m)})
		}); err != nil {
			t.Fatal(err)
		}
	}
	engine := task.NewEngine(task.EngineConfig{DB: db, Commit: commit, Log: quiet})
	return New(Config{DB: db, Commit: commit, Tasks: engine, Releases: lib, DataDir: dir, Log: quiet}), db, commit
}

// The operations that need no host to move, through the Service: each
// from a stored deploy, its result, its hosts, and the releases after.
func TestOperations(t *testing.T) {
	ctx := context.Background()
	type op func(*Service, context.Context) (string, error)
	for _, tc := range []struct {
		name     string
		to       string
		major    bool
		state    string
		hosts    string // host states, in order
		do       op
		says     string // the info, or the refusal
		want     string // the deploy's state after ("" when deleted)
		wantHost string
		releases string // old, patch, major states after
	}{
		{"abort before activation", "patch", false, Host, "deployed pending failed", (*Service).Abort, "Deployment has been aborted\n",
			HostRollback, "rollback-pending rollback-deployed rollback-pending", "deployed deploying deploying"},
		{"abort with nothing deployed yet", "patch", false, Host, "pending pending", (*Service).Abort, "Deployment has been aborted\n",
			HostRollbackDone, "rollback-deployed rollback-deployed", "deployed deploying deploying"},
		{"abort after activation", "patch", false, ActivateDone, "deployed deployed", (*Service).Abort, "Deployment has been aborted\n",
			ActivateRollbackPending, "rollback-pending rollback-pending", "deployed deploying deploying"},
		{"abort refused at start", "patch", false, StartDone, "pending", (*Service).Abort, "Abort is only allowed", StartDone, "pending", "deployed deploying deploying"},
		{"activate rollback", "patch", false, ActivateRollbackPending, "rollback-pending", (*Service).ActivateRollback,
			"Deploy activate-rollback has started", ActivateRollbackDone, "rollback-pending", "deployed deploying deploying"},
		{"complete", "patch", false, ActivateDone, "deployed", (*Service).Complete, "Deployment has been completed\n", Completed, "deployed", "deployed deploying deploying"},
		{"complete refused", "patch", false, HostDone, "deployed", (*Service).Complete, "Deploy must be in activate-done state to be able to complete.", HostDone, "deployed", "deployed deploying deploying"},
		{"delete a completed patch", "patch", false, Completed, "deployed", (*Service).Delete, "Deploy deleted with success", "", "", "available deployed deploying"},
		{"delete a completed major release", "major", true, Completed, "deployed", (*Service).Delete, "Deploy deleted with success", "", "", "unavailable deploying deployed"},
		{"delete a rolled back deploy", "major", true, HostRollbackDone, "rollback-deployed", (*Service).Delete, "Deploy deleted with success", "", "", "deployed deploying available"},
		{"delete a started deploy", "major", true, StartDone, "pending", (*Service).Delete, "Deploy deleted with success", "", "", "deployed deploying available"},
		{"no delete while a host is deployed", "major", true, StartDone, "pending deployed", (*Service).Delete, "Host h1 is deployed: roll it back", StartDone, "pending deployed", "deployed deploying deploying"},
		{"no delete while hosts deploy", "major", true, Host, "deploying", (*Service).Delete, "Delete is only allowed", Host, "deploying", "deployed deploying deploying"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, db, commit := newService(t)
			d := Deploy{FromReleaseID: "old", FromVersion: "1.0.0", ToReleaseID: tc.to, ToVersion: "x", State: tc.state, Major: tc.major}
			for i, st := range strings.Fields(tc.hosts) {
				d.Hosts = append(d.Hosts, HostDeploy{MachineID: "m" + string(rune('0'+i)), Hostname: "h" + string(rune('0'+i)), FromReleaseID: "old", State: st})
			}
			if err := commit.Do(ctx, func(tx *store.Tx) error { return s.put(tx, d) }); err != nil {
				t.Fatal(err)
			}
			info, err := tc.do(s, ctx)
			if !strings.HasPrefix(info+errText(err), tc.says) {
				t.Errorf("answered %q, want %q", info+errText(err), tc.says)
			}
			after, ok, _ := s.Current(ctx)
			if tc.want == "" {
				if ok {
					t.Errorf("the deploy is still there: %+v", after)
				}
			} else if after.State != tc.want || strings.Join(after.hostStates(), " ") != tc.wantHost {
				t.Errorf("deploy %s, hosts %v; want %s, %s", after.State, after.hostStates(), tc.want, tc.wantHost)
			}
			var states []string
			for _, id := range []string{"old", "patch", "major"} {
				r, _ := db.Release(ctx, id)
				states = append(states, r.State)
			}
			if got := strings.Join(states, " "); got != tc.releases {
				t.Errorf("releases %s, want %s", got, tc.releases)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Host operations refused before a task starts: unknown hosts, hosts in
// the wrong state, a deploy in the wrong state.
func TestHostOperationRefusals(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		state    string
		host     string
		rollback bool
		says     string
	}{
		{"an unknown host", Host, "pending", false, "Host nobody can not be found"},
		{"a deployed host", Host, "deployed", false, "Host h0 is deployed: it can be deployed when it is pending or failed"},
		{"a host rollback before abort", Host, "deployed", true, "Host rollback is only allowed"},
		{"a pending host rolled back", HostRollback, "rollback-deployed", true, "Host h0 is rollback-deployed: it can be rolled back when it is rollback-pending or rollback-failed"},
		{"a host deploy after activation", ActivateDone, "deployed", false, "Host deployment is only allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, commit := newService(t)
			d := Deploy{ToReleaseID: "patch", State: tc.state, Hosts: []HostDeploy{{MachineID: "m0", Hostname: "h0", State: tc.host}}}
			if err := commit.Do(ctx, func(tx *store.Tx) error { return s.put(tx, d) }); err != nil {
				t.Fatal(err)
			}
			name := "h0"
			if tc.name == "an unknown host" {
				name = "nobody"
			}
			_, err := s.hostOp(ctx, name, true, tc.rollback)
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want %q", err, tc.says)
			}
		})
	}
}
