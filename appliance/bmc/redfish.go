package bmc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"

	"github.com/slipway/slipway/appliance/domain"
)

// httpClients are the two ways of talking to BMCs: verifying their TLS
// certificates (the default) or not (a per-BMC opt-out). Each has its own
// transport: gofish would otherwise turn verification off on a TLS config
// it shares with http.DefaultTransport, for the whole process.
type httpClients struct {
	verifying, insecure *http.Client
}

// newHTTPClients makes both; roots, if not nil, are the CAs the verifying
// one trusts instead of the system's.
func newHTTPClients(timeout time.Duration, maxPerHost int, roots *x509.CertPool) httpClients {
	mk := func(insecure bool) *http.Client {
		return &http.Client{Timeout: timeout, Transport: objectsOnly{&http.Transport{
			DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: insecure, RootCAs: roots, MinVersion: tls.VersionTLS12}, //nolint:gosec // per-BMC opt-out
			TLSHandshakeTimeout: timeout,
			MaxIdleConnsPerHost: maxPerHost,
			IdleConnTimeout:     90 * time.Second,
		}}}
	}
	return httpClients{verifying: mk(false), insecure: mk(true)}
}

func (h httpClients) close() {
	h.verifying.CloseIdleConnections()
	h.insecure.CloseIdleConnections()
}

// Auth modes a BMC is logged in with.
const (
	AuthSession = "session"
	AuthBasic   = "basic"
)

// connect opens a Redfish session (sessions spare the BMC a password check
// per request) where the BMC offers one, else uses basic auth: a service
// root without a session link (sushy-tools, some BMCs), or a session
// service that fails. Wrong credentials are not retried as basic auth. It
// says which mode it used.
func (h httpClients) connect(ctx context.Context, endpoint, user, password string, insecure bool) (*gofish.APIClient, string, error) {
	cfg := gofish.ClientConfig{
		Endpoint: endpoint, Username: user, Password: password, HTTPClient: h.verifying,
		NoModifyTransport: true, ReuseConnections: true, MaxConcurrentRequests: 4,
	}
	if insecure {
		cfg.HTTPClient = h.insecure
	}
	sessions, err := offersSessions(ctx, cfg.HTTPClient, endpoint)
	if err != nil {
		return nil, "", err
	}
	if sessions {
		c, err := gofish.ConnectContext(ctx, cfg)
		if err == nil || !answeredWithError(err) {
			return c, AuthSession, wrapIf(err, "log in with a session")
		}
	}
	cfg.BasicAuth = true
	c, err := gofish.ConnectContext(ctx, cfg)
	if err != nil {
		return nil, "", fmt.Errorf("read the service root: %w", err)
	}
	// Basic auth is only checked by the first request that needs it.
	resp, err := c.Get("/redfish/v1/Systems")
	if err != nil {
		return nil, "", fmt.Errorf("log in with basic auth: %w", err)
	}
	resp.Body.Close()
	return c, AuthBasic, nil
}

func wrapIf(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// offersSessions reads the service root, which needs no credentials, for
// its session service link. A root that cannot be read is left to the
// login to report.
func offersSessions(ctx context.Context, client *http.Client, endpoint string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(endpoint, "/")+"/redfish/v1/", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var root struct {
		Links struct {
			Sessions struct {
				ID string `json:"@odata.id"`
			}
		}
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&root) != nil {
		return true, nil
	}
	return root.Links.Sessions.ID != "", nil
}

// answeredWithError: the BMC answered with an error status that is not a
// verdict on the credentials: a session login it does not support, a
// resource it does not have (or fails to give).
func answeredWithError(err error) bool {
	var re *schemas.Error
	if !errors.As(cause(err), &re) {
		return false
	}
	switch re.HTTPReturnedStatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return false
	}
	return re.HTTPReturnedStatusCode >= 400
}

// collected is a poll's inventory, and whether all but the system was
// carried over from the last poll.
type collected struct {
	Inventory
	carriedOver bool
}

// sameSystem says whether inv is the system known describes, with the same
// BIOS: the rest of known still holds.
func (inv *Inventory) sameSystem(known *Inventory) bool {
	return known.System == inv.System && known.Model == inv.Model && known.Serial == inv.Serial && known.BIOSVersion == inv.BIOSVersion
}

// collect reads the inventory of one of the BMC's computer systems: the
// one named (by URI or Id), or else the first by URI. Given what the last
// poll found (known), it reads the system alone and carries the rest over,
// unless the system's identity or BIOS changed since.
func collect(c *gofish.APIClient, system string, known *Inventory) (collected, error) {
	var got collected
	inv := &got.Inventory
	systems, err := c.Service.Systems()
	if err != nil {
		return got, fmt.Errorf("read systems: %w", err)
	}
	if len(systems) == 0 {
		return got, errors.New("the BMC manages no computer system")
	}
	sort.Slice(systems, func(i, j int) bool { return systems[i].ODataID < systems[j].ODataID })
	sys, err := pickSystem(systems, system)
	if err != nil {
		return got, err
	}
	if len(systems) > 1 {
		for _, s := range systems {
			inv.Systems = append(inv.Systems, s.ODataID)
		}
	}
	inv.System, inv.PowerState, inv.Health = sys.ODataID, string(sys.PowerState), worstHealth(sys.Status.Health, sys.Status.HealthRollup)
	inv.Manufacturer, inv.Model, inv.Serial, inv.BIOSVersion = sys.Manufacturer, sys.Model, sys.SerialNumber, sys.BiosVersion
	inv.BootMode = string(sys.Boot.BootSourceOverrideMode)
	if m := sys.MemorySummary.TotalSystemMemoryGiB; m != nil {
		inv.MemoryMiB = int(*m * 1024)
	}
	if n := sys.ProcessorSummary.Count; n != nil {
		inv.CPUCount = int(*n)
	}
	if known != nil && inv.sameSystem(known) {
		inv.MACs, inv.BMCVersion, inv.Firmware, inv.Missing = known.MACs, known.BMCVersion, known.Firmware, known.Missing
		got.carriedOver = true
		return got, nil
	}
	// The system is the poll; the rest is collected where the BMC has it,
	// and each part it lacks is reported on its own.
	var parts []error
	inv.MACs, err = hostMACs(sys)
	parts = append(parts, err)
	inv.BMCVersion, err = managerVersion(c)
	parts = append(parts, err)
	inv.Firmware, err = firmwareInventory(c)
	parts = append(parts, err)
	for _, err := range parts {
		switch {
		case err == nil:
		case answeredWithError(err):
			_, why := describe(err, "", 0)
			inv.Missing = append(inv.Missing, strings.SplitN(err.Error(), ":", 2)[0]+": "+why)
		default:
			return got, err // the BMC stopped answering, or refused us
		}
	}
	return got, nil
}

// pickSystem is the system named by URI or Id ("" is the first).
func pickSystem(systems []*schemas.ComputerSystem, name string) (*schemas.ComputerSystem, error) {
	if name == "" {
		return systems[0], nil
	}
	uris := make([]string, len(systems))
	for i, s := range systems {
		if s.ODataID == name || s.ID == name || strings.TrimSuffix(s.ODataID, "/") == strings.TrimSuffix(name, "/") {
			return s, nil
		}
		uris[i] = s.ODataID
	}
	return nil, fmt.Errorf("the BMC manages no system %q; it manages %s", name, strings.Join(uris, ", "))
}

// worstHealth is the worse of a system's own health and its rollup (its
// parts'): a failed DIMM shows in the rollup only.
func worstHealth(own, rollup schemas.Health) string {
	rank := map[schemas.Health]int{schemas.OKHealth: 1, schemas.WarningHealth: 2, schemas.CriticalHealth: 3}
	if rank[rollup] > rank[own] {
		return string(rollup)
	}
	return string(own)
}

// toManager: the NIC is the host's interface to its own BMC (a Redfish
// host interface), never on the provisioning LAN.
func toManager(nic *schemas.EthernetInterface) bool {
	var raw struct {
		Links struct {
			HostInterface struct {
				ID string `json:"@odata.id"`
			}
		}
	}
	return json.Unmarshal(nic.RawData, &raw) == nil && raw.Links.HostInterface.ID != ""
}

func hostMACs(sys *schemas.ComputerSystem) ([]string, error) {
	nics, err := sys.EthernetInterfaces()
	if err != nil {
		return nil, fmt.Errorf("read host NICs of %s: %w", sys.ODataID, err)
	}
	var macs []string
	for _, nic := range nics {
		if nic.EthernetInterfaceType != "" && nic.EthernetInterfaceType != schemas.PhysicalEthernetDeviceType || toManager(nic) {
			continue
		}
		if mac, err := domain.ParseMAC(nic.MACAddress); err == nil {
			macs = append(macs, string(mac))
		}
	}
	slices.Sort(macs)
	return slices.Compact(macs), nil
}

func managerVersion(c *gofish.APIClient) (string, error) {
	managers, err := c.Service.Managers()
	if err != nil {
		return "", fmt.Errorf("read managers: %w", err)
	}
	for _, m := range managers {
		if m.ManagerType == schemas.BMCManagerType || len(managers) == 1 {
			return m.FirmwareVersion, nil
		}
	}
	return "", nil
}

func firmwareInventory(c *gofish.APIClient) ([]Firmware, error) {
	us, err := c.Service.UpdateService()
	if err != nil {
		return nil, fmt.Errorf("read update service: %w", err)
	}
	items, err := us.FirmwareInventory()
	if err != nil {
		return nil, fmt.Errorf("read firmware inventory: %w", err)
	}
	fw := make([]Firmware, 0, len(items))
	for _, it := range items {
		fw = append(fw, Firmware{ID: it.ID, Name: it.Name, Version: it.Version, Updateable: it.Updateable})
	}
	sort.Slice(fw, func(i, j int) bool { return fw[i].ID < fw[j].ID })
	return fw, nil
}

// cause digs the first underlying error out of gofish's collection errors,
// which carry one error per member that failed.
func cause(err error) error {
	var ce *schemas.CollectionError
	if !errors.As(err, &ce) || len(ce.Failures) == 0 {
		return err
	}
	links := make([]string, 0, len(ce.Failures))
	for l := range ce.Failures {
		links = append(links, l)
	}
	slices.Sort(links)
	return fmt.Errorf("%s: %w", links[0], ce.Failures[links[0]])
}

// describe turns a Redfish or network error into what an operator needs:
// whether the BMC answered at all, and what to do about it.
func describe(err error, user string, timeout time.Duration) (answered bool, msg string) {
	err = cause(err)
	var re *schemas.Error
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var certInvalid x509.CertificateInvalidError
	var netErr net.Error
	var recordHeader tls.RecordHeaderError
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var notObject *notAnObject
	switch {
	case errors.Is(err, errPollOverran):
		return true, err.Error()
	case errors.As(err, &re):
		switch re.HTTPReturnedStatusCode {
		case http.StatusUnauthorized:
			return true, fmt.Sprintf("wrong credentials: the BMC refused user %q (HTTP 401); fix the BMC's credentials", user)
		case http.StatusForbidden:
			return true, fmt.Sprintf("user %q may not do this on the BMC (HTTP 403); give it the Operator or Administrator role", user)
		}
		msg := redfishMessage(re)
		if plainToTLS(msg) {
			return true, "the BMC speaks HTTPS on this port, and was asked in plain HTTP: register it as https://…"
		}
		return true, fmt.Sprintf("the BMC answered HTTP %d: %s", re.HTTPReturnedStatusCode, msg)
	case errors.As(err, &recordHeader), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return true, "the BMC speaks plain HTTP on this port, and was asked in HTTPS: register it as http://…"
	case strings.Contains(err.Error(), "malformed HTTP response \"\\x15\\x03"):
		return true, "the BMC speaks HTTPS on this port, and was asked in plain HTTP: register it as https://…"
	case errors.As(err, &notObject):
		return true, "the BMC answered something that is not Redfish JSON: " + notObject.Error()
	case errors.As(err, &syntaxErr), errors.As(err, &typeErr), errors.Is(err, io.ErrUnexpectedEOF):
		return true, "the BMC answered something that is not Redfish JSON (cut short, or not JSON at all): " + err.Error()
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &certInvalid):
		return true, fmt.Sprintf("its TLS certificate is not trusted (%v); set insecure_skip_verify for this BMC if you accept it", err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return false, "connection refused: nothing listens for Redfish at this address"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return false, "no route to the BMC: is it on the provisioning LAN?"
	case errors.As(err, &netErr) && netErr.Timeout():
		return false, fmt.Sprintf("no answer within %s", timeout)
	case errors.As(err, &netErr):
		return false, err.Error()
	}
	return true, err.Error()
}

func redfishMessage(re *schemas.Error) string {
	for _, info := range re.ExtendedInfos {
		if info.Message != "" {
			return info.Message
		}
	}
	if re.Message != "" {
		return summary(re.Message)
	}
	return http.StatusText(re.HTTPReturnedStatusCode)
}

// maxSummary bounds what a BMC's error text adds to a status or a log.
const maxSummary = 200

var (
	htmlTitle = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	htmlTag   = regexp.MustCompile(`(?s)<[^>]*>`)
)

// summary is a BMC's error body as a line a person reads: an HTML page by
// its title (or its text), anything long cut short.
func summary(body string) string {
	body = strings.TrimSpace(body)
	if strings.HasPrefix(body, "<") {
		text := ""
		if m := htmlTitle.FindStringSubmatch(body); m != nil {
			text = m[1]
		} else {
			text = htmlTag.ReplaceAllString(body, " ")
		}
		body = "an HTML page: " + strings.Join(strings.Fields(text), " ")
	}
	body = strings.Join(strings.Fields(body), " ")
	if len(body) > maxSummary {
		body = body[:maxSummary] + "…"
	}
	return body
}

// plainToTLS: the BMC's web server says it got plain HTTP on its HTTPS port.
func plainToTLS(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "http request to an https server") || strings.Contains(m, "plain http request was sent to https port")
}

// authRefused says the BMC refused the credentials or the session: the
// connection must be opened afresh.
func authRefused(err error) bool {
	var re *schemas.Error
	return errors.As(cause(err), &re) && re.HTTPReturnedStatusCode == http.StatusUnauthorized
}
