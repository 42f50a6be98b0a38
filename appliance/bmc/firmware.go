package bmc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"
)

// act runs fn on a BMC's connection, for an operator action or a task
// step; its failure is an *ActionError that says what the BMC said.
func act[T any](ctx context.Context, m *Manager, bmcID, what string, fn func(*gofish.APIClient, Inventory) (T, error)) (T, error) {
	return actThen(ctx, m, bmcID, what, fn, nil)
}

// actThen is act, and then, once fn succeeded, after runs on the target
// while its connection is still held: taking it again later could fail
// when ctx ends (a stop), and must not leave the connection held.
func actThen[T any](ctx context.Context, m *Manager, bmcID, what string, fn func(*gofish.APIClient, Inventory) (T, error), after func(*target)) (T, error) {
	var zero T
	t, err := m.target(bmcID)
	if err != nil {
		return zero, err
	}
	if err := t.acquire(ctx); err != nil {
		return zero, err
	}
	defer t.release()
	v, err := withConn(ctx, m, t, func(c *gofish.APIClient) (T, error) { return fn(c, t.status.get().Inventory) })
	if err != nil {
		return zero, m.actionError(t, what, err)
	}
	// Whatever was done may have changed what the BMC reports (a firmware
	// update, a BMC reset): its next poll reads the whole inventory.
	t.refresh.Store(true)
	if after != nil {
		after(t)
	}
	return v, nil
}

// Firmware reads a BMC's firmware inventory now, not as last polled.
func (m *Manager) Firmware(ctx context.Context, bmcID string) ([]Firmware, error) {
	return act(ctx, m, bmcID, "read the firmware inventory", func(c *gofish.APIClient, _ Inventory) ([]Firmware, error) {
		return firmwareInventory(c)
	})
}

// SimpleUpdate asks the BMC to fetch imageURI and apply it to component (a
// firmware inventory id). It returns the URI to follow the update at: the
// Redfish task, or its task monitor (a 202's body or Location, or a 204's
// Location, as BMCs vary). "" means the BMC ran the update before it
// answered, with no task: the caller verifies the version.
func (m *Manager) SimpleUpdate(ctx context.Context, bmcID, imageURI, component string) (string, error) {
	return act(ctx, m, bmcID, "start a firmware update", func(c *gofish.APIClient, _ Inventory) (string, error) {
		us, err := c.Service.UpdateService()
		if err != nil {
			return "", fmt.Errorf("read update service: %w", err)
		}
		action, err := simpleUpdateTarget(us)
		if err != nil {
			return "", err
		}
		target := fwInventoryMember(us, component)
		params := &schemas.UpdateServiceSimpleUpdateParameters{ImageURI: imageURI, TransferProtocol: schemas.HTTPTransferProtocolType}
		if target != "" {
			params.Targets = []string{target}
		}
		resp, info, err := schemas.PostWithTask(c, action, params, us.Headers(), false)
		defer schemas.DeferredCleanupHTTPResponse(resp)
		switch {
		case err != nil:
			return "", err
		case info != nil && info.Task != nil && info.Task.ODataID != "":
			return info.Task.ODataID, nil
		case info != nil && info.TaskMonitor != "":
			return info.TaskMonitor, nil
		case info != nil:
			return "", errors.New("the BMC accepted the update (202) but gave no task or Location to follow it")
		case resp != nil && resp.Header.Get("Location") != "":
			return resp.Header.Get("Location"), nil
		}
		return "", nil // done before the answer
	})
}

// simpleUpdateTarget is the UpdateService.SimpleUpdate action's URI.
func simpleUpdateTarget(us *schemas.UpdateService) (string, error) {
	var raw struct {
		Actions struct {
			SimpleUpdate struct {
				Target string `json:"target"`
			} `json:"#UpdateService.SimpleUpdate"`
		}
	}
	if err := json.Unmarshal(us.RawData, &raw); err != nil {
		return "", fmt.Errorf("read update service: %w", err)
	}
	if raw.Actions.SimpleUpdate.Target == "" {
		return "", errors.New("the BMC's update service offers no SimpleUpdate action")
	}
	return raw.Actions.SimpleUpdate.Target, nil
}

// fwInventoryMember is the URI of a component in the firmware inventory.
func fwInventoryMember(us *schemas.UpdateService, component string) string {
	items, err := us.FirmwareInventory()
	if err != nil {
		return ""
	}
	for _, it := range items {
		if it.ID == component {
			return it.ODataID
		}
	}
	return ""
}

// RedfishTask is a BMC's task as an update follows it.
type RedfishTask struct {
	State    string // New | Running | Completed | Exception | …
	Percent  int
	Messages []string
	// Gone: the BMC no longer knows the task (it rebooted to apply it).
	Gone bool
}

// Finished says whether the task ran to an end, well or not.
func (t RedfishTask) Finished() bool {
	switch schemas.TaskState(t.State) {
	case schemas.CompletedTaskState, schemas.ExceptionTaskState, schemas.KilledTaskState, schemas.CancelledTaskState:
		return true
	}
	return t.Gone
}

// Succeeded says whether it ended well.
func (t RedfishTask) Succeeded() bool {
	return schemas.TaskState(t.State) == schemas.CompletedTaskState
}

// Task reads a BMC's task, or its task monitor: a monitor answers with the
// task while it runs, and with the operation's result (or nothing) once it
// has ended.
func (m *Manager) Task(ctx context.Context, bmcID, uri string) (RedfishTask, error) {
	return act(ctx, m, bmcID, "follow a task", func(c *gofish.APIClient, _ Inventory) (RedfishTask, error) {
		resp, err := c.Get(uri)
		defer schemas.DeferredCleanupHTTPResponse(resp)
		if status(err) == http.StatusNotFound {
			return RedfishTask{Gone: true}, nil
		}
		if err != nil {
			return RedfishTask{}, err
		}
		var t schemas.Task
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return RedfishTask{}, fmt.Errorf("read %s: %w", uri, err)
		}
		if len(body) == 0 || json.Unmarshal(body, &t) != nil || t.TaskState == "" {
			// A monitor done with the operation: it answers its result.
			return RedfishTask{State: string(schemas.CompletedTaskState), Percent: 100}, nil
		}
		out := RedfishTask{State: string(t.TaskState)}
		if t.PercentComplete != nil {
			out.Percent = int(*t.PercentComplete)
		}
		for _, msg := range t.Messages {
			out.Messages = append(out.Messages, msg.Message)
		}
		return out, nil
	})
}

// ResetBMC restarts the BMC itself, which some BMCs need to run new BMC
// firmware. Its session goes with it; the next request logs in again.
func (m *Manager) ResetBMC(ctx context.Context, bmcID string) error {
	_, err := actThen(ctx, m, bmcID, "restart the BMC", func(c *gofish.APIClient, _ Inventory) (string, error) {
		managers, err := c.Service.Managers()
		if err != nil {
			return "", fmt.Errorf("read managers: %w", err)
		}
		for _, mgr := range managers {
			if mgr.ManagerType != schemas.BMCManagerType && len(managers) > 1 {
				continue
			}
			rt := schemas.GracefulRestartResetType
			if len(mgr.SupportedResetTypes) > 0 && !slices.Contains(mgr.SupportedResetTypes, rt) {
				rt = mgr.SupportedResetTypes[0]
			}
			_, err := mgr.Reset(rt)
			return string(rt), err
		}
		return "", errors.New("the BMC lists no manager to restart")
	}, func(t *target) { t.conn = nil }) // the restart ends the session
	return err
}

// TasksSince lists the URIs of the BMC's tasks that started at or after
// since, newest first: how an update that a crash interrupted right after
// submitting finds the task it started.
func (m *Manager) TasksSince(ctx context.Context, bmcID string, since time.Time) ([]string, error) {
	return act(ctx, m, bmcID, "list tasks", func(c *gofish.APIClient, _ Inventory) ([]string, error) {
		ts, err := c.Service.Tasks()
		if err != nil {
			return nil, fmt.Errorf("read the task service: %w", err)
		}
		tasks, err := ts.Tasks()
		if err != nil {
			return nil, fmt.Errorf("read tasks: %w", err)
		}
		type started struct {
			uri string
			at  time.Time
		}
		var recent []started
		for _, t := range tasks {
			at, err := time.Parse(time.RFC3339, t.StartTime)
			if err == nil && !at.Before(since) {
				recent = append(recent, started{t.ODataID, at})
			}
		}
		slices.SortFunc(recent, func(a, b started) int { return b.at.Compare(a.at) })
		uris := make([]string, len(recent))
		for i, r := range recent {
			uris[i] = r.uri
		}
		return uris, nil
	})
}
