package nodes

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/domain"
)

// CloudInit renders the NoCloud data source.
type CloudInit interface {
	// UserData fails only for a passing reason (listener.Shortage): the
	// machine should ask again.
	UserData(ctx context.Context, mac domain.MAC, serverURL string) ([]byte, error)
	MetaData(ctx context.Context, mac domain.MAC, serverURL string) []byte
	VendorData() []byte
	NetworkConfig(ctx context.Context, mac domain.MAC) []byte
	// Script is a deploying machine's boot action script; ok is false for
	// a machine that is not deploying.
	Script(ctx context.Context, mac domain.MAC) ([]byte, bool)
}

// Onboarding records heartbeats and answers for onboarding records.
type Onboarding interface {
	RecordHeartbeat(ctx context.Context, hb domain.Heartbeat) (domain.Client, error)
	Client(ctx context.Context, mac domain.MAC) (domain.Client, error)
	// Clients are the onboarding records of the first limit MACs after
	// after, by MAC (all of them when limit is 0).
	Clients(ctx context.Context, after domain.MAC, limit int) ([]domain.Client, error)
	ResetOnboarding(ctx context.Context, machineID string) (int64, error)
}

// Neighbors finds the MAC behind a client address.
type Neighbors interface {
	Lookup(ip netip.Addr) (domain.MAC, error)
}

// The gb10 provisioning API: cloud-init by MAC, heartbeats, clients. These
// are the node-facing doors, open on the LAN.
func onboardingRoutes(app fiber.Router, cfg Config) {
	if cfg.CloudInit != nil {
		ci := cfg.CloudInit
		app.Get("/cloud-init/user-data", cloudInitFile(cfg, func(c *fiber.Ctx, mac domain.MAC) ([]byte, error) {
			return ci.UserData(c.UserContext(), mac, serverURL(c, cfg))
		}))
		app.Get("/cloud-init/meta-data", cloudInitFile(cfg, func(c *fiber.Ctx, mac domain.MAC) ([]byte, error) {
			return ci.MetaData(c.UserContext(), mac, serverURL(c, cfg)), nil
		}))
		app.Get("/cloud-init/vendor-data", cloudInitFile(cfg, func(*fiber.Ctx, domain.MAC) ([]byte, error) { return ci.VendorData(), nil }))
		app.Get("/cloud-init/network-config", cloudInitFile(cfg, func(c *fiber.Ctx, mac domain.MAC) ([]byte, error) {
			return ci.NetworkConfig(c.UserContext(), mac), nil
		}))
		app.Get("/cloud-init/bootactions.sh", func(c *fiber.Ctx) error {
			mac, err := domain.ParseMAC(c.Query("mac"))
			if err != nil {
				mac = neighborMAC(c, cfg)
			} else if err := proveCaller(c, cfg, mac, "", domain.DoorCloudInit); err != nil {
				return err
			}
			script, ok := ci.Script(c.UserContext(), mac)
			if !ok {
				return fiber.NewError(fiber.StatusNotFound, "no boot actions: the machine is not being deployed from a site design")
			}
			c.Set(fiber.HeaderContentType, "text/x-shellscript; charset=utf-8")
			return c.Send(script)
		})
	}
	if cfg.Onboarding != nil {
		app.Post("/heartbeat", heartbeat(cfg))
		app.Get("/clients", clients(cfg.Onboarding))
		app.Get("/clients/:mac", client(cfg.Onboarding))
	}
}

// cloudInitFile answers a cloud-init fetch: for the MAC it names, else the
// requester's (by the neighbor table), else "unknown". A MAC that does not
// parse is a 400.
func cloudInitFile(cfg Config, render func(*fiber.Ctx, domain.MAC) ([]byte, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		raw := c.Query("mac")
		mac, err := domain.ParseMAC(raw)
		switch {
		case raw != "" && err != nil:
			// Not the requester's data in its place: a node asking for a
			// MAC it got wrong must hear so.
			cfg.Logger.Warn("cloud-init fetch names a MAC that does not parse", "path", c.Path(), "mac", raw, "client", c.IP())
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("mac=%q is not a MAC address (use 52:54:00:12:34:56)", raw))
		case raw == "":
			mac = neighborMAC(c, cfg)
		default:
			if err := proveCaller(c, cfg, mac, "", domain.DoorCloudInit); err != nil {
				return err
			}
		}
		// A shortage is a 503 (the server's error handler): cloud-init
		// asks again, ten times a second apart for a NoCloud seed over
		// the network, where the fallback would have installed the
		// machine without its profile.
		body, err := render(c, mac)
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, "text/yaml; charset=utf-8")
		return c.Send(body)
	}
}

// neighborMAC places a request that names no MAC: the neighbor table's
// entry for its address, else "" (unknown).
func neighborMAC(c *fiber.Ctx, cfg Config) domain.MAC {
	if cfg.Neighbors == nil {
		return ""
	}
	ip, err := netip.ParseAddr(c.IP())
	if err != nil {
		return ""
	}
	mac, err := cfg.Neighbors.Lookup(ip)
	if err != nil {
		cfg.Logger.Debug("client MAC unknown", "client", ip, "error", err)
		return ""
	}
	return mac
}

// serverURL is the base URL the node reached us by (its Host header), so
// that URLs in its data work from where it stands; the configured address
// when the header is missing or anything but a host name or address and a
// port: the URL lands in shell lines and YAML of the node's data.
func serverURL(c *fiber.Ctx, cfg Config) string {
	if host := c.Hostname(); plainHost(host) {
		return "http://" + host
	}
	return cfg.ServerURL
}

// hostName is a DNS name or an IPv4 address; plainHost adds an optional
// port, or is a bracketed IPv6 address with one.
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$`)

func plainHost(hostPort string) bool {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		host, port = hostPort, ""
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return false
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Zone() == "" && (a.Is4() || strings.HasPrefix(hostPort, "["))
	}
	return hostName.MatchString(host)
}

type heartbeatRequest struct {
	MAC    string `json:"mac"`
	Token  string `json:"token"`
	Stage  string `json:"stage"`
	Phase  string `json:"phase"`
	Detail string `json:"detail"`
}

type clientJSON struct {
	MAC           string      `json:"mac"`
	MachineID     string      `json:"machine_id"`
	IP            string      `json:"ip"`
	Hostname      string      `json:"hostname"`
	CurrentStage  string      `json:"current_stage"`
	LastHeartbeat time.Time   `json:"last_heartbeat"`
	Stages        []stageJSON `json:"stages"`
}

type stageJSON struct {
	Stage     string    `json:"stage"`
	Phase     string    `json:"phase"`
	Timestamp time.Time `json:"timestamp"`
	Detail    string    `json:"detail,omitempty"`
}

func toClientJSON(cl domain.Client) clientJSON {
	out := clientJSON{MAC: string(cl.MAC), MachineID: cl.MachineID, IP: cl.IP, Hostname: cl.Hostname,
		CurrentStage: string(cl.CurrentStage), LastHeartbeat: cl.LastHeartbeat, Stages: make([]stageJSON, len(cl.Stages))}
	for i, s := range cl.Stages {
		out.Stages[i] = stageJSON{Stage: string(s.Stage), Phase: string(s.Phase), Timestamp: s.Timestamp, Detail: s.Detail}
	}
	return out
}

// maxDetail bounds a heartbeat's detail text.
const maxDetail = 4096

func heartbeat(cfg Config) fiber.Handler {
	return func(c *fiber.Ctx) error {
		hb, token, bad := parseHeartbeat(c.Body(), c.Query("mac"))
		if bad != nil {
			return unprocessable(c, *bad)
		}
		if hb.MAC == "" {
			if hb.MAC = neighborMAC(c, cfg); hb.MAC == "" {
				return unprocessable(c, invalidField{field: "mac", msg: "mac is required: give it in the body (any common spelling)"})
			}
		} else if err := proveCaller(c, cfg, hb.MAC, token, domain.DoorHeartbeat); err != nil {
			return err
		}
		hb.ClientIP = c.IP()
		rec, err := cfg.Onboarding.RecordHeartbeat(c.UserContext(), hb)
		if refused := new(domain.DiscoveryRefusedError); errors.As(err, &refused) {
			return fiber.NewError(fiber.StatusNotFound, refused.Error())
		}
		if err != nil {
			return err
		}
		return c.JSON(toClientJSON(rec))
	}
}

// invalidField is a request field that cannot be taken: why, and what
// values would be.
type invalidField struct {
	field, msg string
	allowed    []string
}

// parseHeartbeat checks a heartbeat body; queryMAC is ?mac=, used when the
// body names none. The MAC comes back empty when neither names one (the
// caller may still find it); a MAC that is given must parse. token is the
// node token the body carried, if any.
func parseHeartbeat(body []byte, queryMAC string) (hb domain.Heartbeat, token string, bad *invalidField) {
	var req heartbeatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return hb, "", &invalidField{field: "body", msg: fmt.Sprintf("the body is not a JSON heartbeat: %v", err)}
	}
	hb.Detail = req.Detail
	if given := cmp.Or(req.MAC, queryMAC); given != "" {
		mac, err := domain.ParseMAC(given)
		if err != nil {
			return hb, "", &invalidField{field: "mac", msg: "mac: " + err.Error()}
		}
		hb.MAC = mac
	}
	var err error
	var enum *domain.EnumError
	if hb.Stage, err = domain.ParseStage(req.Stage); errors.As(err, &enum) {
		return hb, "", &invalidField{field: "stage", msg: err.Error(), allowed: enum.Allowed}
	}
	if hb.Phase, err = domain.ParsePhase(req.Phase); errors.As(err, &enum) {
		return hb, "", &invalidField{field: "phase", msg: err.Error(), allowed: enum.Allowed}
	}
	if len(hb.Detail) > maxDetail {
		return hb, "", &invalidField{field: "detail", msg: fmt.Sprintf("detail is %d bytes; at most %d", len(hb.Detail), maxDetail)}
	}
	return hb, req.Token, nil
}

// unprocessable answers 422 in both shapes a client may read: Slipway's
// {"error": ...} and FastAPI's {"detail": [...]}, which gb10 clients know.
func unprocessable(c *fiber.Ctx, bad invalidField) error {
	item := fiber.Map{"loc": []string{"body", bad.field}, "msg": bad.msg, "type": "value_error"}
	if bad.allowed != nil {
		item["type"] = "enum"
		item["ctx"] = fiber.Map{"expected": bad.allowed}
	}
	return c.Status(fiber.StatusUnprocessableEntity).JSON(fiber.Map{"error": bad.msg, "allowed": bad.allowed, "detail": []fiber.Map{item}})
}

// clients answers every onboarding record, keyed by MAC as gb10 does.
// clients answers every MAC's record, as the onboarding API does; with
// ?limit=N (and ?after=<mac> for the next page) only N of them, and a Link
// header to the next page when there may be one.
func clients(o Onboarding) fiber.Handler {
	return func(c *fiber.Ctx) error {
		limit := c.QueryInt("limit", 0)
		if limit < 0 || limit > maxClientsPage {
			return fiber.NewError(fiber.StatusBadRequest, fmt.Sprintf("limit=%s: use 1 to %d", c.Query("limit"), maxClientsPage))
		}
		var after domain.MAC
		if s := c.Query("after"); s != "" {
			mac, err := domain.ParseMAC(s)
			if err != nil {
				return fiber.NewError(fiber.StatusBadRequest, "after: "+err.Error())
			}
			after = mac
		}
		list, err := o.Clients(c.UserContext(), after, limit)
		if err != nil {
			return err
		}
		if limit > 0 && len(list) == limit {
			c.Set(fiber.HeaderLink, fmt.Sprintf(`</clients?limit=%d&after=%s>; rel="next"`, limit, list[len(list)-1].MAC))
		}
		out := make(map[string]clientJSON, len(list))
		for _, cl := range list {
			out[string(cl.MAC)] = toClientJSON(cl)
		}
		return c.JSON(out)
	}
}

// maxClientsPage bounds one page of /clients.
const maxClientsPage = 10000

func client(o Onboarding) fiber.Handler {
	return func(c *fiber.Ctx) error {
		mac, err := domain.ParseMAC(c.Params("mac"))
		if err != nil {
			return fiber.NewError(fiber.StatusBadRequest, "mac: "+err.Error())
		}
		cl, err := o.Client(c.UserContext(), mac)
		if errors.Is(err, domain.ErrNoHeartbeats) {
			return fiber.NewError(fiber.StatusNotFound, fmt.Sprintf("no heartbeats from %s", mac))
		}
		if err != nil {
			return err
		}
		return c.JSON(toClientJSON(cl))
	}
}
