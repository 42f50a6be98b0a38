package drydock

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/slipway/slipway/appliance/deploy"
	"github.com/slipway/slipway/appliance/design"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/web"
)

// maxTasks bounds GET /tasks; DELETE /tasks?days= keeps the table short.
const maxTasks = 10000

func linkBase(c *fiber.Ctx) string { return c.BaseURL() + Prefix }

// listTasks: GET /tasks, every task (subtasks too) in full.
func listTasks(tasks Tasks) fiber.Handler {
	return func(c *fiber.Ctx) error {
		all, err := tasks.TasksOfKind(c.UserContext(), deploy.KindPrefix, maxTasks)
		if err != nil {
			return err
		}
		out := make([]fiber.Map, len(all))
		for i, t := range all {
			out[i] = taskJSON(t, linkBase(c))
		}
		return c.JSON(out)
	}
}

// createTask: POST /tasks; 201 with Location and the queued task.
func createTask(dep Deploy) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var body struct {
			Action     string             `json:"action"`
			DesignRef  string             `json:"design_ref"`
			NodeFilter *design.NodeFilter `json:"node_filter"`
		}
		if err := web.DecodeJSON(c, &body); err != nil {
			return appError(fiber.StatusBadRequest, err.Error())
		}
		if body.Action == "" || body.DesignRef == "" {
			return appError(fiber.StatusBadRequest, "Task creation requires fields design_ref, action")
		}
		who, _ := web.CallerOf(c)
		t, err := dep.Submit(c.UserContext(), deploy.Params{Action: body.Action, DesignRef: body.DesignRef,
			NodeFilter: body.NodeFilter, CreatedBy: who.User})
		switch {
		case errors.Is(err, deploy.ErrUnsupportedAction):
			return appError(fiber.StatusBadRequest, "Unsupported action "+body.Action)
		case errors.Is(err, task.ErrBusy):
			return appError(fiber.StatusConflict, err.Error())
		case err != nil:
			return appError(fiber.StatusBadRequest, err.Error())
		}
		c.Location(Prefix + "/tasks/" + t.ID)
		return c.Status(fiber.StatusCreated).JSON(taskJSON(t, linkBase(c)))
	}
}

// purgeTasks: DELETE /tasks?days=N (90 by default).
func purgeTasks(dep Deploy) fiber.Handler {
	return func(c *fiber.Ctx) error {
		days, err := strconv.Atoi(c.Query("days", "90"))
		if err != nil || days < 0 {
			return appError(fiber.StatusBadRequest, fmt.Sprintf("days %q: give a whole number of days", c.Query("days")))
		}
		if _, err := dep.Purge(c.UserContext(), time.Now().AddDate(0, 0, -days)); err != nil {
			return err
		}
		return c.SendString("Tables purged successfully.")
	}
}

// findTask is a task of this API; any other id (malformed too) is 404.
func findTask(c *fiber.Ctx, tasks Tasks, id string) (task.Task, error) {
	if _, err := uuid.Parse(id); err != nil {
		return task.Task{}, fmt.Errorf("%w %s", errNoTask, id)
	}
	t, err := tasks.Task(c.UserContext(), id)
	if errors.Is(err, domain.ErrNotFound) || (err == nil && deploy.ActionOf(t.Kind) == "") {
		return task.Task{}, fmt.Errorf("%w %s", errNoTask, id)
	}
	return t, err
}

// getTask: GET /tasks/{id}[?builddata=true][&subtaskerrors=true][&layers=N].
func getTask(tasks Tasks, dep Deploy) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id := c.Params("id")
		t, err := findTask(c, tasks, id)
		if errors.Is(err, errNoTask) {
			return appError(fiber.StatusNotFound, "Task "+id+" does not exist")
		}
		if err != nil {
			return err
		}
		if layers := c.Query("layers"); layers != "" {
			n, err := strconv.Atoi(layers)
			if err != nil {
				return appError(fiber.StatusBadRequest, "layers: give a number (-1 for all)")
			}
			out := fiber.Map{"init_task_id": t.ID}
			if err := addLayers(c, tasks, t, n, out); err != nil {
				return err
			}
			return c.JSON(out)
		}
		out := taskJSON(t, linkBase(c))
		if c.QueryBool("builddata") {
			rows, err := dep.TaskBuildData(c.UserContext(), t.ID)
			if err != nil {
				return err
			}
			out["build_data"] = buildDataJSON(rows)
		}
		if c.QueryBool("subtaskerrors") {
			errs, err := subtaskErrors(c, tasks, t)
			if err != nil {
				return err
			}
			out["subtask_errors"] = errs
		}
		return c.JSON(out)
	}
}

// addLayers puts t and its subtasks down to depth layers (-1: all) into
// out, by task id.
func addLayers(c *fiber.Ctx, tasks Tasks, t task.Task, layers int, out fiber.Map) error {
	out[t.ID] = taskJSON(t, linkBase(c))
	if layers == 0 || layers == 1 {
		return nil
	}
	for _, id := range subtaskIDs(t) {
		sub, err := tasks.Task(c.UserContext(), id)
		if err != nil {
			return err
		}
		if err := addLayers(c, tasks, sub, layers-1, out); err != nil {
			return err
		}
	}
	return nil
}

func resultOf(t task.Task) deploy.Result {
	var res deploy.Result
	_ = json.Unmarshal(t.Result, &res)
	return res
}

func subtaskIDs(t task.Task) []string { return resultOf(t).Subtasks }

// subtaskErrors are the results of the subtasks that have errors.
func subtaskErrors(c *fiber.Ctx, tasks Tasks, t task.Task) (fiber.Map, error) {
	out := fiber.Map{}
	for _, id := range subtaskIDs(t) {
		sub, err := tasks.Task(c.UserContext(), id)
		if err != nil {
			return nil, err
		}
		if res := resultOf(sub); res.Errors() > 0 {
			out[id] = resultJSON(id, res, res.Status, linkBase(c))
		}
	}
	return out, nil
}

// taskBuildData: GET /tasks/{id}/builddata; 404 with an empty body when
// there is none, as Drydock does.
func taskBuildData(tasks Tasks, dep Deploy) fiber.Handler {
	return func(c *fiber.Ctx) error {
		t, err := findTask(c, tasks, c.Params("id"))
		if errors.Is(err, errNoTask) {
			c.Status(fiber.StatusNotFound) // Drydock's: no body
			return nil
		}
		if err != nil {
			return err
		}
		rows, err := dep.TaskBuildData(c.UserContext(), t.ID)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			c.Status(fiber.StatusNotFound) // Drydock's: no body
			return nil
		}
		return c.JSON(buildDataJSON(rows))
	}
}
