package drydock

import (
	"encoding/json"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/deploy"
	"github.com/slipway/slipway/appliance/design"
	"github.com/slipway/slipway/appliance/task"
)

// status is Drydock's Status object (validation answers, task results).
func status(st string, code int, message string, messages []fiber.Map) fiber.Map {
	if messages == nil {
		messages = []fiber.Map{}
	}
	errs := 0
	for _, m := range messages {
		if m["error"] == true {
			errs++
		}
	}
	out := fiber.Map{"kind": "Status", "apiVersion": "v1.0", "metadata": fiber.Map{}, "message": message, "reason": "Validation",
		"status": st, "details": fiber.Map{"errorCount": errs, "messageList": messages}}
	if code != 0 {
		out["code"] = code
	}
	return out
}

// validationMessages are a design's problems as Drydock's
// ValidationMessage objects.
func validationMessages(d *design.Design) []fiber.Map {
	out := []fiber.Map{}
	for _, p := range d.Problems {
		docs := []fiber.Map{}
		if p.Document != (design.Ref{}) {
			docs = append(docs, fiber.Map{"schema": p.Document.Schema, "name": p.Document.Name})
		}
		out = append(out, fiber.Map{"kind": "ValidationMessage", "message": p.Message, "error": p.Level == design.Error,
			"level": string(p.Level), "name": p.Field, "diagnostic": p.String(), "documents": docs})
	}
	return out
}

// taskJSON is a task as Drydock shows it.
func taskJSON(t task.Task, linkBase string) fiber.Map {
	var p deploy.Params
	_ = json.Unmarshal(t.Params, &p)
	var res deploy.Result
	_ = json.Unmarshal(t.Result, &res)
	st := map[string]string{task.Queued: "queued", task.Running: "running", task.Succeeded: "complete",
		task.Failed: "complete", task.Cancelled: "terminated"}[t.Status]
	resultStatus := res.Status
	if resultStatus == "" {
		resultStatus = deploy.Incomplete
	}
	out := fiber.Map{"kind": "Task", "apiVersion": "v1", "task_id": t.ID, "action": deploy.ActionOf(t.Kind),
		"parent_task_id": nullable(p.Parent), "design_ref": p.DesignRef, "status": st, "node_filter": p.NodeFilter,
		"subtask_id_list": nonNil(res.Subtasks), "created": pythonTime(t.CreatedAt), "created_by": p.CreatedBy,
		"updated": pythonTime(t.UpdatedAt), "terminated": nil, "terminated_by": nil, "terminate": false, "retry": 0,
		"result": resultJSON(t.ID, res, resultStatus, linkBase)}
	if t.Status == task.Cancelled {
		out["terminate"], out["terminated"] = true, pythonTime(t.FinishedAt)
		out["terminated_by"] = strings.TrimPrefix(t.Message, "cancelled by ")
	}
	if p.Node != "" && p.NodeFilter == nil {
		out["node_filter"] = fiber.Map{"filter_set_type": "union", "filter_set": []fiber.Map{{"filter_type": "union", "node_names": []string{p.Node}}}}
	}
	return out
}

func resultJSON(id string, res deploy.Result, st, linkBase string) fiber.Map {
	msgs := []fiber.Map{}
	for _, m := range res.Messages {
		msgs = append(msgs, fiber.Map{"message": m.Message, "error": m.Error, "context_type": m.ContextType,
			"context": m.Context, "ts": pythonTime(m.At), "extra": fiber.Map{}})
	}
	return fiber.Map{"kind": "Status", "apiVersion": "v1.0", "metadata": fiber.Map{}, "message": nil, "reason": nil,
		"status": st, "successes": nonNil(res.Successes), "failures": nonNil(res.Failures),
		"links":   []fiber.Map{{"rel": "detail_logs", "href": linkBase + "/tasks/" + id + "/builddata"}},
		"details": fiber.Map{"errorCount": res.Errors(), "messageList": msgs}}
}

func buildDataJSON(rows []deploy.BuildData) []fiber.Map {
	out := []fiber.Map{}
	for _, b := range rows {
		out = append(out, fiber.Map{"node_name": b.Node, "task_id": nullable(b.TaskID), "collected_date": pythonTime(b.CollectedAt),
			"generator": b.Generator, "data_format": b.Format, "data_element": b.Element})
	}
	return out
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
