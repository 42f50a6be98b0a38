package native

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/firmware"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/web"
)

// Firmware is the image library and the update engine as the API uses them.
type Firmware interface {
	Images(ctx context.Context) ([]firmware.Image, error)
	Add(ctx context.Context, u firmware.Upload, r io.Reader) (firmware.Image, error)
	Start(ctx context.Context, machineID, imageID string) (task.Task, error)
}

// Tasks are the stored tasks, and the engine that can cancel them.
type Tasks interface {
	Tasks(ctx context.Context, machineID string, limit int) ([]task.Task, error)
	Unfinished(ctx context.Context) ([]task.Task, error)
	TasksInBatch(ctx context.Context, kind, batch string) ([]task.Task, error)
	Task(ctx context.Context, id string) (task.Task, error)
	Cancel(ctx context.Context, id, by string) (task.Task, error)
}

type imageJSON struct {
	ID        string `json:"image_id"`
	Component string `json:"component"`
	Version   string `json:"version"`
	Size      int64  `json:"size"`
	Filename  string `json:"filename,omitempty"`
	URL       string `json:"url"` // where BMCs fetch it
	CreatedAt string `json:"created_at"`
}

func toImageJSON(im firmware.Image) imageJSON {
	return imageJSON{ID: im.ID, Component: im.Component, Version: im.Version, Size: im.Size, Filename: im.Filename,
		URL: "/firmware/" + firmware.FileName(im.ID), CreatedAt: im.CreatedAt.UTC().Format("2006-01-02T15:04:05Z")}
}

// taskJSON is a task as the API shows it: its params and result as the
// JSON objects they are.
type taskJSON struct {
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

func toTaskJSON(t task.Task) taskJSON {
	return taskJSON{ID: t.ID, Kind: t.Kind, MachineID: t.MachineID, Status: t.Status, Step: t.Step, Progress: t.Progress,
		Message: t.Message, Params: t.Params, Result: t.Result, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, FinishedAt: t.FinishedAt}
}

// uploadPath is the one endpoint whose body may exceed the body limit: it
// streams to disk.
const uploadPath = "/firmware"

func firmwareRoutes(api fiber.Router, fw Firmware) {
	api.Get("/firmware", func(c *fiber.Ctx) error {
		list, err := fw.Images(c.UserContext())
		if err != nil {
			return err
		}
		out := make([]imageJSON, len(list))
		for i, im := range list {
			out[i] = toImageJSON(im)
		}
		return c.JSON(fiber.Map{"images": out})
	})
	// The image is the raw body; what it is goes in the query:
	// POST /api/v1/firmware?component=BMC&version=2.0.1&sha256=…&filename=…
	api.Post("/firmware", web.RequireRole(web.RoleAdmin), func(c *fiber.Ctx) error {
		u := firmware.Upload{Component: c.Query("component"), Version: c.Query("version"), SHA256: c.Query("sha256"), Filename: c.Query("filename")}
		if err := u.Check(); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
		body := c.Context().RequestBodyStream()
		if body == nil {
			body = bytes.NewReader(c.Body())
		}
		im, err := fw.Add(c.UserContext(), u, body)
		var bad *firmware.ChecksumError
		if errors.As(err, &bad) {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
		if err != nil {
			return err
		}
		return c.Status(fiber.StatusCreated).JSON(toImageJSON(im))
	})
	api.Post("/machines/:id/firmware", web.RequireRole(web.RoleAdmin), func(c *fiber.Ctx) error {
		var b struct {
			ImageID string `json:"image_id"`
		}
		if err := web.DecodeJSON(c, &b); err != nil {
			return err
		}
		if b.ImageID == "" {
			return fiber.NewError(fiber.StatusBadRequest, "image_id: name an image of /api/v1/firmware")
		}
		t, err := fw.Start(c.UserContext(), c.Params("id"), b.ImageID)
		if err != nil {
			return actionError(err)
		}
		return c.Status(fiber.StatusAccepted).JSON(toTaskJSON(t))
	})
}

func taskRoutes(api fiber.Router, tasks Tasks) {
	api.Get("/tasks", func(c *fiber.Ctx) error {
		limit, err := strconv.Atoi(c.Query("limit", "100"))
		if err != nil || limit < 1 || limit > maxPage {
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("limit must be a whole number from 1 to %d", maxPage))
		}
		list, err := tasks.Tasks(c.UserContext(), c.Query("machine_id"), limit)
		if err != nil {
			return err
		}
		out := make([]taskJSON, len(list))
		for i, t := range list {
			out[i] = toTaskJSON(t)
		}
		return c.JSON(fiber.Map{"tasks": out})
	})
	// An operator cancels a queued or running task; it stops between two
	// steps and is stored cancelled, with who asked.
	api.Post("/tasks/:id/cancel", web.RequireRole(web.RoleOperator), func(c *fiber.Ctx) error {
		who, _ := web.CallerOf(c)
		t, err := tasks.Cancel(c.UserContext(), c.Params("id"), who.User)
		if err != nil {
			return actionError(err)
		}
		return c.Status(fiber.StatusAccepted).JSON(toTaskJSON(t))
	})
	api.Get("/tasks/:id", func(c *fiber.Ctx) error {
		t, err := tasks.Task(c.UserContext(), c.Params("id"))
		if err != nil {
			return actionError(err)
		}
		return c.JSON(toTaskJSON(t))
	})
}
