package drydock

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/design"
	"github.com/slipway/slipway/web"
)

// validateDesign: POST /validatedesign {"href": design_ref}; 200 with a
// Success Status, 400 with a Failure one listing every problem.
func validateDesign(dep Deploy) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var body struct {
			Href string `json:"href"`
		}
		if len(c.Body()) == 0 {
			return appError(fiber.StatusBadRequest, "Request body must not be empty")
		}
		if err := web.DecodeJSON(c, &body); err != nil {
			return appError(fiber.StatusBadRequest, err.Error())
		}
		if body.Href == "" {
			return appError(fiber.StatusBadRequest, "Missing input required value: href")
		}
		d, err := dep.Design(c.UserContext(), body.Href)
		if err != nil {
			// Ingesting the design failed: Drydock's lowercase failure.
			msgs := []fiber.Map{{"kind": "ValidationMessage", "message": err.Error(), "error": true, "level": "Error",
				"name": "design_ref", "diagnostic": loadHint(err), "documents": []fiber.Map{}}}
			return c.Status(fiber.StatusBadRequest).JSON(status("failure", 400, "Drydock Validations", msgs))
		}
		if !d.Valid() {
			return c.Status(fiber.StatusBadRequest).JSON(status("Failure", 400, "Drydock Validations", validationMessages(d)))
		}
		return c.JSON(status("Success", 200, "Drydock Validations", validationMessages(d)))
	}
}

func loadHint(err error) string {
	var re *design.RefError
	if errors.As(err, &re) || errors.Is(err, design.ErrUnknown) {
		return "upload the design to this box (PUT /api/v1/designs/{name}) and give slipway:{name}, or serve it over HTTP"
	}
	return "the design is not YAML documents"
}

// nodeFilter: POST /nodefilter {"design_ref", "node_filter"}; the names.
func nodeFilter(dep Deploy) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var body struct {
			DesignRef  string             `json:"design_ref"`
			NodeFilter *design.NodeFilter `json:"node_filter"`
		}
		if err := web.DecodeJSON(c, &body); err != nil {
			return appError(fiber.StatusBadRequest, err.Error())
		}
		if body.DesignRef == "" {
			return appError(fiber.StatusBadRequest, "Missing input required value: design_ref")
		}
		names, err := dep.Select(c.UserContext(), body.DesignRef, body.NodeFilter)
		if err != nil {
			return appError(fiber.StatusBadRequest, err.Error())
		}
		return c.JSON(nonNil(names))
	}
}
