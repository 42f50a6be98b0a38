package usm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/release"
)

// releaseJSON is a release as USM lists it (release_data.py's
// to_query_dict).
type releaseJSON struct {
	ReleaseID           string   `json:"release_id"`
	State               string   `json:"state"`
	SWVersion           string   `json:"sw_version"`
	Component           *string  `json:"component"`
	Status              string   `json:"status"`
	Unremovable         bool     `json:"unremovable"`
	Summary             string   `json:"summary"`
	Description         string   `json:"description"`
	InstallInstructions string   `json:"install_instructions"`
	Warnings            string   `json:"warnings"`
	RebootRequired      bool     `json:"reboot_required"`
	PrepatchedISO       bool     `json:"prepatched_iso"`
	PreinstalledPatches []string `json:"preinstalled_patches"`
	Requires            []string `json:"requires"`
	Packages            []string `json:"packages"`
	ActivationScripts   []string `json:"activation_scripts"`
}

func toReleaseJSON(r release.Release) releaseJSON {
	nonNil := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return releaseJSON{ReleaseID: r.ReleaseID, State: r.State, SWVersion: r.SWVersion, Component: r.Component, Status: r.Status,
		Unremovable: r.Unremovable, Summary: r.Summary, Description: r.Description, InstallInstructions: r.InstallInstructions,
		Warnings: r.Warnings, RebootRequired: r.RebootRequired != nil && *r.RebootRequired, PreinstalledPatches: []string{},
		Requires: nonNil(r.Requires), Packages: nonNil(r.Packages), ActivationScripts: nonNil(r.ActivationScripts)}
}

// presence are the GET /release/{id…}/is_<state> checks.
var presence = map[string]string{"is_available": release.StateAvailable, "is_deployed": release.StateDeployed, "is_committed": release.StateCommitted}

func releaseRoutes(r fiber.Router, rels Releases) {
	r.Get("/release", func(c *fiber.Ctx) error {
		list, err := rels.Releases(c.UserContext(), c.Query("show"), c.Query("release"))
		if err != nil {
			return err
		}
		out := make([]releaseJSON, len(list))
		for i, rel := range list {
			out[i] = toReleaseJSON(rel)
		}
		return c.JSON(out)
	})
	r.Get("/release/*", func(c *fiber.Ctx) error {
		ids := pathIDs(c)
		if state, ok := presence[ids[len(ids)-1]]; ok && len(ids) > 1 {
			return c.JSON(allIn(c, rels, ids[:len(ids)-1], state))
		}
		if len(ids) != 1 {
			return &usmError{code: fiber.StatusNotFound, msg: "Release " + strings.Join(ids, "/") + " not found"}
		}
		rel, err := rels.Release(c.UserContext(), ids[0])
		if errors.Is(err, release.ErrNotFound) {
			return &usmError{code: fiber.StatusNotFound, msg: "Release " + ids[0] + " not found"}
		}
		if err != nil {
			return err
		}
		return c.JSON(toReleaseJSON(rel))
	})
	r.Delete("/release/*", func(c *fiber.Ctx) error {
		info, err := rels.Delete(c.UserContext(), pathIDs(c))
		if err != nil {
			return err
		}
		return c.JSON(answer(info, "", nil))
	})
	// StarlingX serves POST /v1/release; its API reference says /v1/upload.
	r.Post("/release", upload(rels))
	r.Post("/upload", upload(rels))
}

// pathIDs are the ids a path names: /release/a/b → [a b].
func pathIDs(c *fiber.Ctx) []string {
	var out []string
	for _, s := range strings.Split(c.Params("*"), "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return []string{""}
	}
	return out
}

// allIn is USM's presence check: every release known and in state; an
// unknown one is false, not an error.
func allIn(c *fiber.Ctx, rels Releases, ids []string, state string) bool {
	for _, id := range ids {
		rel, err := rels.Release(c.UserContext(), id)
		if err != nil || rel.State != state {
			return false
		}
	}
	return true
}

// upload takes releases as multipart parts (one per file, named by the
// client's path: the base name is kept), streamed to the library, or as a
// JSON list of paths already on the box (the CLI's --local, sent as
// text/plain).
func upload(rels Releases) fiber.Handler {
	return func(c *fiber.Ctx) error {
		u, err := rels.NewUpload()
		if err != nil {
			return err
		}
		defer u.Close()
		body := c.Context().RequestBodyStream()
		if body == nil {
			body = bytes.NewReader(c.Body())
		}
		mediaType, params, _ := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
		if strings.HasPrefix(mediaType, "multipart/") {
			err = addParts(u, multipart.NewReader(body, params["boundary"]))
		} else {
			err = addLocal(u, body)
		}
		if err != nil {
			return err
		}
		imported, err := u.Import(c.UserContext())
		info := make([]fiber.Map, 0, len(imported))
		var ids []string
		for _, im := range imported {
			entry := fiber.Map{"id": nil, "sw_release": nil}
			if im.ID != "" {
				entry = fiber.Map{"id": im.ID, "sw_release": im.SWVersion}
				ids = append(ids, im.ID)
			}
			info = append(info, fiber.Map{im.File: entry})
		}
		text := ""
		if len(ids) > 0 {
			text = strings.Join(ids, ", ") + " is now uploaded\n"
		}
		var refusal release.Refusal
		if errors.As(err, &refusal) {
			return c.Status(fiber.StatusNotAcceptable).JSON(answer(text, err.Error(), fiber.Map{"upload_info": info}))
		}
		if err != nil {
			return err
		}
		return c.JSON(answer(text, "", fiber.Map{"upload_info": info}))
	}
}

func addParts(u *release.Upload, mr *multipart.Reader) error {
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return notAcceptable("the upload is not a readable multipart body: " + err.Error())
		}
		name := part.FileName()
		if name == "" {
			name = part.FormName()
		}
		err = u.Add(name, part)
		part.Close()
		if err != nil {
			return err
		}
	}
}

func addLocal(u *release.Upload, body io.Reader) error {
	var paths []string
	err := json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(&paths)
	if errors.Is(err, io.EOF) {
		return nil // nothing sent: USM's "No files uploaded"
	}
	if err != nil {
		return notAcceptable(fmt.Sprintf("send the release files as multipart parts, or a JSON list of their paths on this box: %v", err))
	}
	return u.AddLocal(paths...)
}
