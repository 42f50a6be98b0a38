package bmcemu

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes one emulated BMC. The zero value is a usable BMC of the
// default mockup with user "admin", password "admin".
type Config struct {
	Mockup   *Mockup // nil: DefaultMockup, loaded for this emulator alone
	Username string
	Password string
	// Serial replaces the systems' SerialNumber, so that many emulators of
	// one mockup are distinct machines.
	Serial string
	// HostMACs replace, in order, the MACs of the first system's physical
	// NICs: the MACs Slipway links a BMC to its machine by.
	HostMACs []string
	// PowerDelay is how long a reset takes to change PowerState (default
	// 300 ms); UpdateDuration how long a firmware update task runs (2 s).
	PowerDelay     time.Duration
	UpdateDuration time.Duration
	// RequireIfMatch answers a PATCH without If-Match with 428, as some
	// vendors do.
	RequireIfMatch bool
	// ExtraBootTargets are added to the boot targets the mockup allows
	// (e.g. UefiHttp, which neither mockup offers), as a newer BMC would.
	ExtraBootTargets []string
	// HideETags sends no ETag header, as some BMCs that still want
	// If-Match do.
	HideETags bool
	// BMCUpdateNeedsReset stages BMC firmware until Manager.Reset, as
	// many BMCs do; the reset loses sessions and tasks, like a reboot.
	BMCUpdateNeedsReset bool
	// OnBoot is called, on its own goroutine, each time a system powers on.
	OnBoot func(BootEvent)
	// Fetch downloads SimpleUpdate images (default: 60 s timeout client).
	Fetch *http.Client
	// UpdateReply is how SimpleUpdate answers: "" a 202 with the task and
	// its Location (the default), "no-content" a 204 with only the
	// Location, "synchronous" the update run to its end before a 204
	// without a task, as some BMCs do.
	UpdateReply string
	// OnceAsContinuous stores a one-time boot override as Continuous, as
	// some BMCs do: the system netboots at every power-on until it is
	// cleared.
	OnceAsContinuous bool
	// NoHTTPBootURI refuses Boot/HttpBootUri as read only, as BMCs
	// without a writable UEFI HTTP boot URI do.
	NoHTTPBootURI bool
	// NoSessionLink serves a service root without Links.Sessions and no
	// session service, as sushy-tools does: clients must use basic auth.
	NoSessionLink bool
	// Missing are resources (URIs) that answer 404, as on BMCs that lack
	// them (e.g. /redfish/v1/UpdateService/FirmwareInventory).
	Missing []string
	// Systems is how many computer systems this BMC manages, as a blade
	// chassis' or multi-node tray's does: the mockup's first system and
	// copies of it (URIs ending "-2", "-3", …). 0 or 1: the mockup's own.
	Systems int
	// SystemMACs are the host MACs of the copies, one list per copy in
	// order; a copy without one gets MACs derived from the first system's.
	SystemMACs [][]string
	// ExtraFirmware adds firmware inventory members, component → version
	// (a switch's CPLD and NVOS, a power shelf's PMC and PSU), which
	// SimpleUpdate updates like the mockup's own.
	ExtraFirmware map[string]string
}

// BootEvent says what a system booted from when it powered on.
type BootEvent struct {
	System string // the system's URI
	// Source is the one-time or continuous override it honoured ("Pxe",
	// "UefiHttp", …), or "" when it followed its normal boot order.
	Source      string
	Mode        string // UEFI | Legacy
	HTTPBootURI string
	MACs        []string // the system's host NIC MACs
}

// Faults are misbehaviours injected into an Emulator.
type Faults struct {
	Latency time.Duration // added before every answer
	Status  int           // answer every request with this status (e.g. 503)
	Hang    bool          // answer nothing until the client gives up
	// FailUpdate ends update tasks in Exception with this message.
	FailUpdate string
	// HTMLErrors answers every request past the service root with a web
	// server's HTML error page (a BMC whose Redfish service is down).
	HTMLErrors bool
	// BadJSON answers every GET past the service root with a body cut in
	// the middle of its JSON.
	BadJSON bool
}

// Emulator is one BMC. It is an http.Handler.
type Emulator struct {
	cfg    Config
	mockup *Mockup
	ctx    context.Context // ends with Close: stops timers and downloads
	cancel context.CancelFunc
	work   sync.WaitGroup

	requests atomic.Int64 // answered or not, for benchmarks that count them

	mu       sync.Mutex
	faults   Faults
	sessions map[string]string         // token → session URI
	overlay  map[string]map[string]any // URI → top-level fields that differ from the mockup
	etags    map[string]int            // URI → modification count
	tasks    map[string]*task
	pending  map[string]string // component → version applied at the next power-on
	extra    map[string][]byte // resources this emulator adds to the mockup
	// bmcPending is BMC firmware applied at the next Manager.Reset.
	bmcPending string
	rebooting  bool // the BMC itself is restarting: every request fails
	seq        int
}

const (
	sessionsURI      = "/redfish/v1/SessionService/Sessions"
	tasksURI         = "/redfish/v1/TaskService/Tasks"
	firmwareURI      = "/redfish/v1/UpdateService/FirmwareInventory"
	simpleUpdateURI  = "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate"
	resetActionPath  = "/Actions/ComputerSystem.Reset"
	defaultUser      = "admin"
	defaultPassword  = "admin"
	defaultPowerWait = 300 * time.Millisecond
	defaultUpdate    = 2 * time.Second
)

// New makes an emulator; Close releases it.
func New(cfg Config) (*Emulator, error) {
	if cfg.Mockup == nil {
		m, err := LoadMockup(DefaultMockup)
		if err != nil {
			return nil, err
		}
		cfg.Mockup = m
	}
	cfg.Username = cmp.Or(cfg.Username, defaultUser)
	cfg.Password = cmp.Or(cfg.Password, defaultPassword)
	if cfg.PowerDelay <= 0 {
		cfg.PowerDelay = defaultPowerWait
	}
	if cfg.UpdateDuration <= 0 {
		cfg.UpdateDuration = defaultUpdate
	}
	if cfg.Fetch == nil {
		cfg.Fetch = &http.Client{Timeout: time.Minute}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Emulator{
		cfg: cfg, mockup: cfg.Mockup, ctx: ctx, cancel: cancel,
		sessions: map[string]string{}, overlay: map[string]map[string]any{}, etags: map[string]int{},
		tasks: map[string]*task{}, pending: map[string]string{}, extra: map[string][]byte{},
	}
	e.copySystems()
	if err := e.personalise(); err != nil {
		return nil, err
	}
	e.addFirmware()
	if cfg.NoSessionLink {
		e.dropSessionLink()
	}
	return e, nil
}

// dropSessionLink takes the session service out of the service root.
func (e *Emulator) dropSessionLink() {
	root := e.object(serviceRoot)
	if links, ok := root["Links"].(map[string]any); ok {
		delete(links, "Sessions")
		e.set(serviceRoot, "Links", links)
	}
	e.set(serviceRoot, "SessionService", nil)
}

// missing says whether the emulator pretends not to have uri.
func (e *Emulator) missing(uri string) bool {
	if e.cfg.NoSessionLink && strings.HasPrefix(uri, "/redfish/v1/SessionService") {
		return true
	}
	return slices.ContainsFunc(e.cfg.Missing, func(m string) bool { return uri == m || strings.HasPrefix(uri, m+"/") })
}

// personalise gives this emulator its own serial and MACs and a clean boot
// override, so that a test proving Slipway set one is not fooled by the
// mockup's.
func (e *Emulator) personalise() error {
	systems := e.Systems()
	if len(systems) == 0 {
		return fmt.Errorf("mockup %s has no systems", e.mockup.Name)
	}
	for _, sys := range systems {
		boot, _ := e.object(sys)["Boot"].(map[string]any)
		if boot == nil {
			boot = map[string]any{}
		}
		boot["BootSourceOverrideEnabled"] = "Disabled"
		boot["BootSourceOverrideTarget"] = "None"
		if allowed, ok := boot["BootSourceOverrideTarget@Redfish.AllowableValues"].([]any); ok {
			for _, t := range e.cfg.ExtraBootTargets {
				allowed = append(allowed, t)
			}
			boot["BootSourceOverrideTarget@Redfish.AllowableValues"] = allowed
		}
		e.set(sys, "Boot", boot)
		if e.cfg.Serial != "" {
			e.set(sys, "SerialNumber", e.cfg.Serial)
		}
	}
	for i, sys := range systems {
		if err := e.setHostMACs(sys, e.macsOf(i)); err != nil {
			return err
		}
	}
	return nil
}

// macsOf is the host MACs given for system i (nil: keep its own).
func (e *Emulator) macsOf(i int) []string {
	if i == 0 {
		return e.cfg.HostMACs
	}
	if i-1 < len(e.cfg.SystemMACs) {
		return e.cfg.SystemMACs[i-1]
	}
	return nil
}

// setHostMACs gives a system's physical NICs macs, in order; NICs beyond
// them get MACs derived from the first.
func (e *Emulator) setHostMACs(system string, macs []string) error {
	nics := e.hostNICs(system)
	if len(macs) > len(nics) {
		return fmt.Errorf("mockup %s: %d host MACs given, system %s has %d NICs", e.mockup.Name, len(macs), system, len(nics))
	}
	if len(macs) == 0 {
		return nil
	}
	base, err := net.ParseMAC(macs[0])
	if err != nil {
		return fmt.Errorf("host MAC: %w", err)
	}
	for i, nic := range nics {
		mac := derivedMAC(base, i)
		if i < len(macs) {
			mac = macs[i]
		}
		e.set(nic, "MACAddress", strings.ToUpper(mac))
		e.set(nic, "PermanentMACAddress", strings.ToUpper(mac))
	}
	return nil
}

// copySystems serves Config.Systems systems: copies of the mockup's first
// one, every resource under it copied with the URIs renamed.
func (e *Emulator) copySystems() {
	own := e.mockup.Systems()
	if e.cfg.Systems <= len(own) || len(own) == 0 {
		return
	}
	first := own[0]
	members := make([]any, 0, e.cfg.Systems)
	for _, sys := range own {
		members = append(members, map[string]any{"@odata.id": sys})
	}
	for n := len(own) + 1; n <= e.cfg.Systems; n++ {
		copyURI := fmt.Sprintf("%s-%d", first, n)
		for uri, doc := range e.mockup.docs {
			if uri == first || strings.HasPrefix(uri, first+"/") {
				e.extra[copyURI+strings.TrimPrefix(uri, first)] = ownMACs(bytes.ReplaceAll(doc, []byte(`"`+first), []byte(`"`+copyURI)), n)
			}
		}
		e.set(copyURI, "Id", path.Base(copyURI))
		members = append(members, map[string]any{"@odata.id": copyURI})
	}
	e.set(systemsURI, "Members", members)
	e.set(systemsURI, "Members@odata.count", len(members))
}

// ownMACs gives a copied NIC (copy n) MACs of its own, so that no two
// systems report one NIC; other resources are returned as they are.
func ownMACs(doc []byte, n int) []byte {
	var o map[string]any
	if json.Unmarshal(doc, &o) != nil {
		return doc
	}
	changed := false
	for _, field := range []string{"MACAddress", "PermanentMACAddress"} {
		s, _ := o[field].(string)
		if mac, err := net.ParseMAC(s); err == nil && len(mac) == 6 {
			mac[2] ^= byte(n)
			o[field], changed = strings.ToUpper(mac.String()), true
		}
	}
	if !changed {
		return doc
	}
	out, _ := json.Marshal(o)
	return out
}

// systemsURI is the collection of the computer systems.
const systemsURI = serviceRoot + "/Systems"

// Systems lists the URIs of the systems this BMC serves.
func (e *Emulator) Systems() []string {
	members, _ := e.field(systemsURI, "Members").([]any)
	out := make([]string, 0, len(members))
	for _, m := range members {
		if o, ok := m.(map[string]any); ok {
			if id, ok := o["@odata.id"].(string); ok {
				out = append(out, id)
			}
		}
	}
	return out
}

// hostNICs lists a system's Ethernet interfaces that have a MAC and are
// not virtual (VLANs), in URI order.
func (e *Emulator) hostNICs(system string) []string {
	var nics []string
	members, _ := e.object(system + "/EthernetInterfaces")["Members"].([]any)
	for _, m := range members {
		o, _ := m.(map[string]any)
		uri, _ := o["@odata.id"].(string)
		nic := e.object(uri)
		if mac, _ := nic["MACAddress"].(string); mac == "" {
			continue
		}
		if t, _ := nic["EthernetInterfaceType"].(string); t == "Virtual" {
			continue
		}
		nics = append(nics, uri)
	}
	sort.Strings(nics)
	return nics
}

// derivedMAC gives the NICs no MAC was given for one of their own, so
// that two emulators never report the same host NIC.
func derivedMAC(base net.HardwareAddr, i int) string {
	mac := slices.Clone(base)
	mac[3] ^= byte(0x40 + i)
	return mac.String()
}

// Close stops the emulator's timers and transfers.
func (e *Emulator) Close() {
	e.cancel()
	e.work.Wait()
}

// SetFaults replaces the injected faults.
func (e *Emulator) SetFaults(f Faults) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = f
}

// Mockup is what the emulator serves.
func (e *Emulator) Mockup() *Mockup { return e.mockup }

// serviceRoot is the Redfish service root.
const serviceRoot = "/redfish/v1"

// set changes one top-level field of a resource (nil removes it); e.mu must
// be held (or the emulator not yet shared).
func (e *Emulator) set(uri, field string, v any) {
	if e.overlay[uri] == nil {
		e.overlay[uri] = map[string]any{}
	}
	e.overlay[uri][field] = v
	e.etags[uri]++
}

// field reads one top-level field of a resource as served now.
func (e *Emulator) field(uri, name string) any {
	if v, ok := e.overlay[uri][name]; ok {
		return v
	}
	return e.object(uri)[name]
}

// doc is a resource as the mockup (or this emulator's additions) has it.
func (e *Emulator) doc(uri string) ([]byte, bool) {
	if b, ok := e.extra[uri]; ok {
		return b, true
	}
	b, ok := e.mockup.docs[uri]
	return b, ok
}

// object parses a resource (without this emulator's changes) to modify.
func (e *Emulator) object(uri string) map[string]any {
	raw, _ := e.doc(uri)
	var o map[string]any
	if json.Unmarshal(raw, &o) != nil {
		return map[string]any{}
	}
	return o
}

// addFirmware adds ExtraFirmware's members to the firmware inventory.
func (e *Emulator) addFirmware() {
	if len(e.cfg.ExtraFirmware) == 0 {
		return
	}
	members, _ := e.object(firmwareURI)["Members"].([]any)
	for _, c := range slices.Sorted(maps.Keys(e.cfg.ExtraFirmware)) {
		uri := firmwareURI + "/" + c
		doc, _ := json.Marshal(map[string]any{"@odata.id": uri, "@odata.type": "#SoftwareInventory.v1_2_0.SoftwareInventory",
			"Id": c, "Name": c + " firmware", "Version": e.cfg.ExtraFirmware[c], "Updateable": true,
			"Status": map[string]any{"State": "Enabled", "Health": "OK"}})
		e.extra[uri] = doc
		members = append(members, map[string]any{"@odata.id": uri})
	}
	e.set(firmwareURI, "Members", members)
	e.set(firmwareURI, "Members@odata.count", len(members))
}

func (e *Emulator) etag(uri string) string { return `"` + strconv.Itoa(e.etags[uri]) + `"` }

// ExpireSessions forgets every session, as a BMC does when sessions time
// out or it reboots.
func (e *Emulator) ExpireSessions() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.sessions)
}

// ServeHTTP answers one Redfish request.
// Requests is how many HTTP requests the BMC has been sent.
func (e *Emulator) Requests() int64 { return e.requests.Load() }

func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.requests.Add(1)
	if !e.misbehave(w, r) {
		return
	}
	uri := strings.TrimSuffix(r.URL.Path, "/")
	if uri == "/redfish" {
		writeJSON(w, http.StatusOK, "", map[string]string{"v1": "/redfish/v1/"})
		return
	}
	if e.missing(uri) {
		writeError(w, http.StatusNotFound, "ResourceMissingAtURI", "The resource at the URI "+uri+" was not found.")
		return
	}
	if !e.public(r.Method, uri) && !e.authenticated(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Redfish"`)
		writeError(w, http.StatusUnauthorized, "NoValidSession", "There is no valid session established with the implementation.")
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		e.get(w, uri)
	case http.MethodPatch:
		e.patch(w, r, uri)
	case http.MethodPost:
		e.post(w, r, uri)
	case http.MethodDelete:
		e.deleteSession(w, uri)
	default:
		writeError(w, http.StatusMethodNotAllowed, "OperationNotAllowed", r.Method+" is not allowed on "+uri)
	}
}

// misbehave applies the injected faults; false means the request is done.
func (e *Emulator) misbehave(w http.ResponseWriter, r *http.Request) bool {
	e.mu.Lock()
	f := e.faults
	e.mu.Unlock()
	if f.Hang {
		select {
		case <-r.Context().Done():
		case <-e.ctx.Done():
		}
		return false
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			return false
		case <-t.C:
		}
	}
	e.mu.Lock()
	rebooting := e.rebooting
	e.mu.Unlock()
	if rebooting {
		writeError(w, http.StatusServiceUnavailable, "ServiceTemporarilyUnavailable", "The BMC is restarting.")
		return false
	}
	if f.Status != 0 {
		writeError(w, f.Status, "InternalError", "The request failed due to an internal service error (injected).")
		return false
	}
	past := strings.TrimSuffix(r.URL.Path, "/") != serviceRoot
	if f.HTMLErrors && past {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head><body>\n<h1>Internal Server Error</h1>\n<p>"+
			strings.Repeat("The server encountered an internal error and was unable to complete your request. ", 40)+"</p>\n</body></html>\n")
		return false
	}
	if f.BadJSON && past && r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"@odata.id": "`+r.URL.Path+`", "Members": [{"@odata.id": "/redfish/v1/Sys`)
		return false
	}
	return true
}

// public says which requests need no credentials, as DSP0266 has it.
func (e *Emulator) public(method, uri string) bool {
	switch {
	case method == http.MethodPost && uri == sessionsURI:
		return true
	case method != http.MethodGet && method != http.MethodHead:
		return false
	}
	return uri == "/redfish/v1" || uri == "/redfish/v1/odata" || uri == "/redfish/v1/$metadata"
}

func (e *Emulator) authenticated(r *http.Request) bool {
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		e.mu.Lock()
		defer e.mu.Unlock()
		_, ok := e.sessions[tok]
		return ok
	}
	user, pass, ok := r.BasicAuth()
	return ok && e.credentialsMatch(user, pass)
}

func (e *Emulator) credentialsMatch(user, pass string) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(e.cfg.Username))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(e.cfg.Password))
	return u&p == 1
}

func (e *Emulator) get(w http.ResponseWriter, uri string) {
	if x, ok := e.mockup.xml[uri]; ok {
		w.Header().Set("Content-Type", "application/xml")
		_, _ = w.Write(x)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case uri == sessionsURI:
		writeJSON(w, http.StatusOK, "", e.sessionCollection())
		return
	case strings.HasPrefix(uri, sessionsURI+"/"):
		if !e.hasSession(uri) {
			writeError(w, http.StatusNotFound, "ResourceMissingAtURI", "The resource at the URI "+uri+" was not found.")
			return
		}
		writeJSON(w, http.StatusOK, "", sessionResource(uri))
		return
	case uri == tasksURI:
		writeJSON(w, http.StatusOK, "", e.taskCollection())
		return
	}
	if t, ok := e.tasks[uri]; ok {
		writeJSON(w, http.StatusOK, "", t.resource())
		return
	}
	body, ok := e.render(uri)
	if !ok {
		writeError(w, http.StatusNotFound, "ResourceMissingAtURI", "The resource at the URI "+uri+" was not found.")
		return
	}
	etag := e.etag(uri)
	if e.cfg.HideETags {
		etag = ""
	}
	writeJSON(w, http.StatusOK, etag, body)
}

// render is the resource as served now: the mockup's with this emulator's
// changes on top.
func (e *Emulator) render(uri string) (any, bool) {
	raw, ok := e.doc(uri)
	if !ok {
		return nil, false
	}
	changes := e.overlay[uri]
	if len(changes) == 0 {
		return json.RawMessage(raw), true
	}
	o := e.object(uri)
	for k, v := range changes {
		o[k] = v
		if v == nil {
			delete(o, k) // set to nil: the resource lacks the field
		}
	}
	return o, true
}

func (e *Emulator) newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (e *Emulator) login(w http.ResponseWriter, r *http.Request) {
	var creds struct{ UserName, Password string }
	if err := json.NewDecoder(r.Body).Decode(&creds); err != nil {
		writeError(w, http.StatusBadRequest, "MalformedJSON", "The request body submitted was malformed JSON: "+err.Error())
		return
	}
	if !e.credentialsMatch(creds.UserName, creds.Password) {
		writeError(w, http.StatusUnauthorized, "InsufficientPrivilege", "Invalid username or password.")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	uri := sessionsURI + "/" + strconv.Itoa(e.seq)
	tok := e.newToken()
	e.sessions[tok] = uri
	w.Header().Set("X-Auth-Token", tok)
	w.Header().Set("Location", uri)
	writeJSON(w, http.StatusCreated, "", sessionResource(uri))
}

func (e *Emulator) hasSession(uri string) bool {
	for _, s := range e.sessions {
		if s == uri {
			return true
		}
	}
	return false
}

func (e *Emulator) deleteSession(w http.ResponseWriter, uri string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for tok, s := range e.sessions {
		if s == uri {
			delete(e.sessions, tok)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	writeError(w, http.StatusNotFound, "ResourceMissingAtURI", "The resource at the URI "+uri+" was not found.")
}

func (e *Emulator) sessionCollection() map[string]any {
	var uris []string
	for _, s := range e.sessions {
		uris = append(uris, s)
	}
	return collection(sessionsURI, "#SessionCollection.SessionCollection", "Session Collection", uris)
}

func sessionResource(uri string) map[string]any {
	return map[string]any{
		"@odata.type": "#Session.v1_7_0.Session", "@odata.id": uri,
		"Id": uri[strings.LastIndexByte(uri, '/')+1:], "Name": "User Session",
	}
}

func collection(uri, odataType, name string, members []string) map[string]any {
	refs := make([]map[string]string, 0, len(members))
	for _, m := range members {
		refs = append(refs, map[string]string{"@odata.id": m})
	}
	return map[string]any{
		"@odata.type": odataType, "@odata.id": uri, "Name": name,
		"Members": refs, "Members@odata.count": len(refs),
	}
}

func (e *Emulator) post(w http.ResponseWriter, r *http.Request, uri string) {
	switch {
	case uri == sessionsURI:
		e.login(w, r)
	case uri == simpleUpdateURI:
		e.simpleUpdate(w, r)
	case strings.HasPrefix(uri, "/redfish/v1/Managers/") && strings.HasSuffix(uri, "/Actions/Manager.Reset"):
		e.resetBMC(w)
	case strings.HasSuffix(uri, resetActionPath):
		e.reset(w, r, strings.TrimSuffix(uri, resetActionPath))
	default:
		writeError(w, http.StatusMethodNotAllowed, "OperationNotAllowed", "POST is not allowed on "+uri)
	}
}

// readJSON decodes a request body, answering a malformed one itself.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "MalformedJSON", "The request body submitted was malformed JSON: "+err.Error())
		return false
	}
	return true
}

// missingParameter answers an action called without a required parameter.
func missingParameter(w http.ResponseWriter, action, param string) {
	writeError(w, http.StatusBadRequest, "ActionParameterMissing",
		"The action "+action+" requires the parameter "+param+" to be present in the request body.")
}

// sleep waits d, or less if the emulator closes (then it says false).
func (e *Emulator) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-e.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func writeJSON(w http.ResponseWriter, status int, etag string, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("OData-Version", "4.0")
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// writeError answers in the Redfish error shape (DSP0266 §9.5.2.2) with a
// Base registry message id.
func writeError(w http.ResponseWriter, status int, messageID, message string) {
	id := "Base.1.8." + messageID
	writeJSON(w, status, "", map[string]any{"error": map[string]any{
		"code": id, "message": message,
		"@Message.ExtendedInfo": []map[string]any{{
			"@odata.type": "#Message.v1_1_1.Message", "MessageId": id, "Message": message, "Severity": "Critical",
		}},
	}})
}
