package web

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/domain"
)

// Mount is one API the server carries: a package under web/ builds it (the
// native API, the console, the node-facing doors, each dialect), and the
// wiring lists the mounts. It brings its own routes, how its callers prove
// who they are, and the shape its errors take.
type Mount struct {
	// Name says which API it is, in logs.
	Name string
	// Prefix is where its routes live ("/api/v1"); "" mounts them at the
	// root.
	Prefix string
	// Auth, if set, runs before every route of the mount.
	Auth fiber.Handler
	// Errors shapes the mount's errors; nil is JSON {"error": "..."}.
	Errors ErrorShape
	// StreamedBodies are paths under Prefix whose request bodies are
	// streamed to their handler, past the server's body limit (uploads).
	StreamedBodies []string
	// Routes adds the mount's routes. stopping closes when the server
	// shuts down, so that long-lived answers (event streams) end.
	Routes func(r fiber.Router, stopping <-chan struct{})
}

// ErrorShape writes an error as a mount's clients expect it, with the HTTP
// status code already decided.
type ErrorShape func(c *fiber.Ctx, code int, err error) error

// JSONError is the default shape: {"error": "..."}.
func JSONError(c *fiber.Ctx, code int, err error) error {
	return c.Status(code).JSON(fiber.Map{"error": err.Error()})
}

// NoEndpointError is a request for a path no route serves: 404, which a
// mount may answer in its own words.
type NoEndpointError struct{ Method, Path string }

func (e *NoEndpointError) Error() string { return "no such endpoint: " + e.Method + " " + e.Path }

// StatusError is an error that knows its HTTP status: a mount's own
// error types implement it.
type StatusError interface {
	error
	HTTPStatus() int
}

// StatusOf is the HTTP status an error stands for: a *fiber.Error's code,
// a StatusError's, 404 for a NoEndpointError, else 500.
func StatusOf(err error) int {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	var se StatusError
	if errors.As(err, &se) {
		return se.HTTPStatus()
	}
	var ne *NoEndpointError
	if errors.As(err, &ne) {
		return fiber.StatusNotFound
	}
	switch {
	case passes(err):
		return fiber.StatusServiceUnavailable
	case errors.Is(err, domain.ErrStorageFull):
		return fiber.StatusInsufficientStorage
	case errors.Is(err, domain.ErrStorageReadOnly), errors.Is(err, domain.ErrBusy):
		return fiber.StatusServiceUnavailable
	}
	return fiber.StatusInternalServerError
}

// within runs h only for paths inside prefix: fiber's own prefix match
// would take /api/v1.0/… (Drydock) for a part of /api/v1.
func within(prefix string, h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !under(c.Path(), prefix) {
			return c.Next()
		}
		return h(c)
	}
}

// under says whether path is prefix or below it, by whole segments.
func under(path, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// signatureKey holds a failed request's signature in its fiber.Ctx.
type signatureKey struct{}

// ErrorSignature is the short random id of a server-side failure (a 5xx),
// which its one log line carries: a shape may show it to the client, so
// that an operator finds the line (USM's "Error signature [...]").
func ErrorSignature(c *fiber.Ctx) string {
	s, _ := c.Locals(signatureKey{}).(string)
	return s
}

// shapeErrors answers a mount's failed requests in its shape, logging
// server-side failures once, with their signature.
func shapeErrors(shape ErrorShape, log *slog.Logger, failures *failureLog) fiber.Handler {
	if shape == nil {
		shape = JSONError
	}
	return func(c *fiber.Ctx) error {
		err := c.Next()
		if err == nil {
			return nil
		}
		code := StatusOf(err)
		if code >= 500 {
			sig := make([]byte, 4)
			_, _ = rand.Read(sig)
			c.Locals(signatureKey{}, hex.EncodeToString(sig))
			failures.failed(log, code, err, "method", c.Method(), "path", c.Path(), "signature", ErrorSignature(c))
		}
		tellToRetry(c, err)
		if shapeErr := shape(c, code, err); shapeErr != nil {
			return shapeErr
		}
		// Answered: the metrics still see the status from the response.
		return nil
	}
}

// DecodeJSON reads a JSON body, whatever Content-Type the client said
// (curl -d says a form); an empty body is an empty object.
func DecodeJSON(c *fiber.Ctx, v any) error {
	if len(c.Body()) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.Body(), v); err != nil {
		return fiber.NewError(fiber.StatusBadRequest, "the body is not the JSON object this endpoint takes: "+err.Error())
	}
	return nil
}

// DecodeStrictJSON reads a JSON body that must be one object of exactly
// v's fields, as APIs with a schema of additionalProperties: false take
// it; the mount shapes the error.
func DecodeStrictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("the body is not the JSON object this endpoint takes: %w", err)
	}
	if dec.More() {
		return errors.New("the body holds more than one JSON value")
	}
	return nil
}
