package bmcemu

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// writableBoot says which Boot properties a client may PATCH.
func writableBoot(prop string) bool {
	switch prop {
	case "BootSourceOverrideEnabled", "BootSourceOverrideTarget", "BootSourceOverrideMode", "HttpBootUri":
		return true
	}
	return false
}

// patch changes a system's Boot settings, the only writable part of the
// emulated BMC, with the ETag rules of DSP0266.
func (e *Emulator) patch(w http.ResponseWriter, r *http.Request, uri string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.isSystem(uri) {
		writeError(w, http.StatusMethodNotAllowed, "OperationNotAllowed", "PATCH is not allowed on "+uri)
		return
	}
	switch match := r.Header.Get("If-Match"); {
	case match == "" && e.cfg.RequireIfMatch:
		writeError(w, http.StatusPreconditionRequired, "PreconditionRequired",
			"A precondition header or annotation is required to change the resource at "+uri+".")
		return
	case match != "" && match != "*" && match != e.etag(uri):
		writeError(w, http.StatusPreconditionFailed, "PreconditionFailed",
			"The ETag supplied did not match the ETag required to change this resource.")
		return
	}
	var body struct{ Boot map[string]any }
	if !readJSON(w, r, &body) {
		return
	}
	if body.Boot == nil {
		writeError(w, http.StatusBadRequest, "PropertyNotWritable", "Only Boot can be changed on "+uri+".")
		return
	}
	boot, _ := e.field(uri, "Boot").(map[string]any)
	changed := make(map[string]any, len(boot))
	for k, v := range boot {
		changed[k] = v
	}
	for k, v := range body.Boot {
		if !writableBoot(k) || k == "HttpBootUri" && e.cfg.NoHTTPBootURI {
			writeError(w, http.StatusBadRequest, "PropertyNotWritable", "The property Boot/"+k+" is a read only property.")
			return
		}
		if msg := notAllowed(boot, k, v); msg != "" {
			writeError(w, http.StatusBadRequest, "PropertyValueNotInList", msg)
			return
		}
		changed[k] = v
	}
	if e.cfg.OnceAsContinuous && changed["BootSourceOverrideEnabled"] == "Once" {
		changed["BootSourceOverrideEnabled"] = "Continuous"
	}
	e.set(uri, "Boot", changed)
	w.WriteHeader(http.StatusNoContent)
}

// notAllowed checks a value against the property's AllowableValues
// annotation and DSP2046's enumerations.
func notAllowed(boot map[string]any, prop string, v any) string {
	s, _ := v.(string)
	allowed := map[string][]string{
		"BootSourceOverrideEnabled": {"Disabled", "Once", "Continuous"},
		"BootSourceOverrideMode":    {"Legacy", "UEFI"},
	}[prop]
	if list, ok := boot[prop+"@Redfish.AllowableValues"].([]any); ok {
		allowed = allowed[:0]
		for _, a := range list {
			as, _ := a.(string)
			allowed = append(allowed, as)
		}
	}
	if prop == "HttpBootUri" || allowed == nil || slices.Contains(allowed, s) {
		return ""
	}
	return fmt.Sprintf("The value %q for the property Boot/%s is not in the list of acceptable values (%s).",
		s, prop, strings.Join(allowed, ", "))
}

func (e *Emulator) isSystem(uri string) bool { return slices.Contains(e.Systems(), uri) }

// reset runs ComputerSystem.Reset: the power state changes after
// PowerDelay, as a real host takes time to power up or down.
func (e *Emulator) reset(w http.ResponseWriter, r *http.Request, system string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.isSystem(system) {
		writeError(w, http.StatusNotFound, "ResourceMissingAtURI", "The resource at the URI "+system+" was not found.")
		return
	}
	var body struct{ ResetType string }
	if !readJSON(w, r, &body) {
		return
	}
	if body.ResetType == "" {
		missingParameter(w, "ComputerSystem.Reset", "ResetType")
		return
	}
	allowed := e.resetTypes(system)
	if !slices.Contains(allowed, body.ResetType) {
		writeError(w, http.StatusBadRequest, "ActionParameterValueNotInList", fmt.Sprintf(
			"The value %q for the parameter ResetType in the action ComputerSystem.Reset is not in the list of acceptable values (%s).",
			body.ResetType, strings.Join(allowed, ", ")))
		return
	}
	on := e.field(system, "PowerState") == "On"
	steps := powerSteps(body.ResetType, on)
	e.work.Add(1)
	go e.runPower(system, steps)
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) resetTypes(system string) []string {
	actions, _ := e.mockup.object(system)["Actions"].(map[string]any)
	reset, _ := actions["#ComputerSystem.Reset"].(map[string]any)
	list, _ := reset["ResetType@Redfish.AllowableValues"].([]any)
	var types []string
	for _, t := range list {
		if s, ok := t.(string); ok {
			types = append(types, s)
		}
	}
	if types == nil { // no annotation: DSP2046's ResetType enumeration
		types = []string{"On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart",
			"Nmi", "ForceOn", "PushPowerButton", "PowerCycle", "FullPowerCycle"}
	}
	return types
}

// powerSteps are the power states a reset type goes through.
func powerSteps(resetType string, on bool) []string {
	switch resetType {
	case "On", "ForceOn":
		return []string{"On"}
	case "ForceOff", "GracefulShutdown":
		return []string{"Off"}
	case "PushPowerButton":
		if on {
			return []string{"Off"}
		}
		return []string{"On"}
	case "ForceRestart", "GracefulRestart", "PowerCycle", "FullPowerCycle":
		return []string{"Off", "On"}
	}
	return nil // Nmi and the like change no power state
}

func (e *Emulator) runPower(system string, steps []string) {
	defer e.work.Done()
	for _, state := range steps {
		if !e.sleep(e.cfg.PowerDelay) {
			return
		}
		e.mu.Lock()
		was := e.field(system, "PowerState")
		e.set(system, "PowerState", state)
		var boot *BootEvent
		if state == "On" && was != "On" {
			boot = e.powerOn(system)
		}
		e.mu.Unlock()
		if boot != nil && e.cfg.OnBoot != nil {
			go e.cfg.OnBoot(*boot)
		}
	}
}

// powerOn consumes a one-time boot override and applies firmware that
// waits for a reboot; e.mu is held.
func (e *Emulator) powerOn(system string) *BootEvent {
	for component, version := range e.pending {
		e.applyFirmware(component, version)
		delete(e.pending, component)
	}
	boot, _ := e.field(system, "Boot").(map[string]any)
	ev := &BootEvent{System: system, MACs: e.hostMACs(system)}
	ev.Mode, _ = boot["BootSourceOverrideMode"].(string)
	ev.HTTPBootURI, _ = boot["HttpBootUri"].(string)
	switch boot["BootSourceOverrideEnabled"] {
	case "Once":
		ev.Source, _ = boot["BootSourceOverrideTarget"].(string)
		cleared := make(map[string]any, len(boot))
		for k, v := range boot {
			cleared[k] = v
		}
		cleared["BootSourceOverrideEnabled"] = "Disabled"
		cleared["BootSourceOverrideTarget"] = "None"
		e.set(system, "Boot", cleared)
	case "Continuous":
		ev.Source, _ = boot["BootSourceOverrideTarget"].(string)
	}
	if ev.Source == "None" {
		ev.Source = ""
	}
	return ev
}

func (e *Emulator) hostMACs(system string) []string {
	var macs []string
	for _, nic := range e.hostNICs(system) {
		if mac, ok := e.field(nic, "MACAddress").(string); ok {
			macs = append(macs, mac)
		}
	}
	return macs
}

// PowerState is a system's power state as served now.
func (e *Emulator) PowerState(system string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, _ := e.field(system, "PowerState").(string)
	return s
}

// BootOverride is a system's BootSourceOverrideEnabled and Target now.
func (e *Emulator) BootOverride(system string) (enabled, target string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	boot, _ := e.field(system, "Boot").(map[string]any)
	enabled, _ = boot["BootSourceOverrideEnabled"].(string)
	target, _ = boot["BootSourceOverrideTarget"].(string)
	return enabled, target
}
