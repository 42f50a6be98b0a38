package bmcemu

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// task is one Redfish Task the emulator runs; its fields are guarded by
// the emulator's mutex.
type task struct {
	uri      string
	state    string // New | Running | Completed | Exception
	percent  int
	messages []string
	start    time.Time
	end      time.Time
}

func (t *task) resource() map[string]any {
	status := "OK"
	if t.state == "Exception" {
		status = "Critical"
	}
	msgs := make([]map[string]any, 0, len(t.messages))
	for _, m := range t.messages {
		msgs = append(msgs, map[string]any{"MessageId": "Update.1.0.UpdateProgress", "Message": m})
	}
	r := map[string]any{
		"@odata.type": "#Task.v1_7_3.Task", "@odata.id": t.uri,
		"Id": t.uri[strings.LastIndexByte(t.uri, '/')+1:], "Name": "Firmware update task",
		"TaskState": t.state, "TaskStatus": status, "PercentComplete": t.percent,
		"StartTime": t.start.Format(time.RFC3339), "Messages": msgs,
	}
	if !t.end.IsZero() {
		r["EndTime"] = t.end.Format(time.RFC3339)
	}
	return r
}

func (e *Emulator) taskCollection() map[string]any {
	uris := e.mockup.members(tasksURI)
	for uri := range e.tasks {
		uris = append(uris, uri)
	}
	slices.Sort(uris)
	return collection(tasksURI, "#TaskCollection.TaskCollection", "Task Collection", uris)
}

// simpleUpdate accepts UpdateService.SimpleUpdate and runs it as a task.
func (e *Emulator) simpleUpdate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ImageURI         string
		TransferProtocol string
		Targets          []string
	}
	if !readJSON(w, r, &body) {
		return
	}
	if body.ImageURI == "" {
		missingParameter(w, "UpdateService.SimpleUpdate", "ImageURI")
		return
	}
	for _, t := range body.Targets {
		if _, ok := e.doc(t); !ok || !strings.HasPrefix(t, firmwareURI+"/") {
			writeError(w, http.StatusBadRequest, "ActionParameterValueNotInList", fmt.Sprintf(
				"The value %q for the parameter Targets in the action UpdateService.SimpleUpdate is not a firmware inventory member.", t))
			return
		}
	}
	e.mu.Lock()
	e.seq++
	t := &task{uri: tasksURI + "/" + strconv.Itoa(e.seq), state: "New", start: time.Now().UTC()}
	e.tasks[t.uri] = t
	failure := e.faults.FailUpdate
	res := t.resource()
	e.mu.Unlock()
	e.work.Add(1)
	switch e.cfg.UpdateReply {
	case "synchronous":
		e.runUpdate(t, body.ImageURI, body.Targets, failure)
		e.mu.Lock()
		state, msgs := t.state, t.messages
		e.mu.Unlock()
		if state != "Completed" {
			writeError(w, http.StatusBadRequest, "ActionParameterValueError", strings.Join(msgs, "; "))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case "no-content":
		go e.runUpdate(t, body.ImageURI, body.Targets, failure)
		w.Header().Set("Location", t.uri)
		w.WriteHeader(http.StatusNoContent)
	default:
		go e.runUpdate(t, body.ImageURI, body.Targets, failure)
		w.Header().Set("Location", t.uri)
		writeJSON(w, http.StatusAccepted, "", res)
	}
}

// runUpdate downloads the image, checks it is firmware for this BMC,
// "flashes" it in steps and applies the new version.
func (e *Emulator) runUpdate(t *task, imageURI string, targets []string, failure string) {
	defer e.work.Done()
	e.progress(t, "Running", 0, "Downloading "+imageURI)
	component, version, digest, err := e.download(imageURI)
	if err == nil && len(targets) > 0 && !slices.Contains(targets, firmwareURI+"/"+component) {
		err = fmt.Errorf("the image is firmware for %s, not for %s", component, strings.Join(targets, ", "))
	}
	if err != nil {
		e.finish(t, "Exception", err.Error())
		return
	}
	e.progress(t, "Running", 10, fmt.Sprintf("Image for %s %s verified (sha256 %s)", component, version, digest[:12]))
	const steps = 9
	for i := 1; i <= steps; i++ {
		if !e.sleep(e.cfg.UpdateDuration / steps) {
			return
		}
		if failure != "" && i == steps/2 {
			e.finish(t, "Exception", failure)
			return
		}
		e.progress(t, "Running", 10+90*i/steps, fmt.Sprintf("Flashing %s: %d%%", component, 10+90*i/steps))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case component == "BIOS":
		e.pending[component] = version
		e.finishLocked(t, "Completed", "BIOS "+version+" staged; it takes effect at the next system reset")
		return
	case component == "BMC" && e.cfg.BMCUpdateNeedsReset:
		e.bmcPending = version
		e.finishLocked(t, "Completed", "BMC "+version+" staged; it takes effect when the BMC restarts")
		return
	}
	e.applyFirmware(component, version)
	e.finishLocked(t, "Completed", component+" updated to "+version)
}

// download fetches an image and reads its "FIRMWARE <component> <version>"
// header.
func (e *Emulator) download(uri string) (component, version, digest string, err error) {
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.Fetch.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return "", "", "", fmt.Errorf("ImageURI %q: %w", uri, err)
	}
	resp, err := e.cfg.Fetch.Do(req)
	if err != nil {
		return "", "", "", fmt.Errorf("could not download the image: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", "", "", fmt.Errorf("could not download the image: %s answered %s", uri, resp.Status)
	}
	h := sha256.New()
	br := bufio.NewReader(io.TeeReader(resp.Body, h))
	header, _ := br.ReadString('\n')
	if _, err := io.Copy(io.Discard, br); err != nil {
		return "", "", "", fmt.Errorf("could not download the image: %w", err)
	}
	f := strings.Fields(header)
	if len(f) != 3 || f[0] != "FIRMWARE" {
		return "", "", "", fmt.Errorf("the image is not firmware this BMC can apply")
	}
	if _, ok := e.doc(firmwareURI + "/" + f[1]); !ok {
		return "", "", "", fmt.Errorf("the image is for component %q, which this BMC does not have", f[1])
	}
	return f[1], f[2], hex.EncodeToString(h.Sum(nil)), nil
}

func (e *Emulator) progress(t *task, state string, percent int, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t.state, t.percent = state, percent
	t.messages = append(t.messages, msg)
}

func (e *Emulator) finish(t *task, state, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.finishLocked(t, state, msg)
}

func (e *Emulator) finishLocked(t *task, state, msg string) {
	t.state, t.end = state, time.Now().UTC()
	if state == "Completed" {
		t.percent = 100
	}
	t.messages = append(t.messages, msg)
}

// applyFirmware sets a component's version where a client reads it: the
// firmware inventory, and the manager or system it belongs to; e.mu is held.
func (e *Emulator) applyFirmware(component, version string) {
	item := firmwareURI + "/" + component
	e.set(item, "Version", version)
	related, _ := e.object(item)["RelatedItem"].([]any)
	for _, r := range related {
		ref, _ := r.(map[string]any)
		uri, _ := ref["@odata.id"].(string)
		switch {
		case strings.HasPrefix(uri, "/redfish/v1/Managers/"):
			e.set(uri, "FirmwareVersion", version)
		case strings.HasPrefix(uri, "/redfish/v1/Systems/") && component == "BIOS":
			e.set(uri, "BiosVersion", version)
		}
	}
}

// FirmwareVersion is a firmware inventory member's version as served now.
func (e *Emulator) FirmwareVersion(component string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, _ := e.field(firmwareURI+"/"+component, "Version").(string)
	return v
}

// StagedVersion is the version of component an update staged to take
// effect at the next system reset (BIOS) or BMC restart; "" if none.
func (e *Emulator) StagedVersion(component string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if component == "BMC" {
		return e.bmcPending
	}
	return e.pending[component]
}

// resetBMC restarts the emulated BMC: for PowerDelay it answers nothing
// but 503, then it comes back with staged BMC firmware applied and no
// sessions or tasks, as a rebooted BMC does.
func (e *Emulator) resetBMC(w http.ResponseWriter) {
	e.mu.Lock()
	e.rebooting = true
	e.mu.Unlock()
	e.work.Add(1)
	go func() {
		defer e.work.Done()
		e.sleep(e.cfg.PowerDelay)
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.bmcPending != "" {
			e.applyFirmware("BMC", e.bmcPending)
			e.bmcPending = ""
		}
		clear(e.sessions)
		clear(e.tasks)
		e.rebooting = false
	}()
	w.WriteHeader(http.StatusNoContent)
}
