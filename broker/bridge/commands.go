package bridge

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/slipway/slipway/appliance/auth"
	"github.com/slipway/slipway/appliance/bmc"
)

// Actions are the domain actions the upstream may ask for: the ones the
// native API's operator routes take.
type Actions interface {
	Power(ctx context.Context, bmcID string, a bmc.PowerAction) (string, error)
	Provision(ctx context.Context, machineID string, o bmc.ProvisionOptions) (bmc.Provisioned, error)
	ResetOnboarding(ctx context.Context, machineID string) (int64, error)
}

// Commands lets the upstream act on this site: off unless Actions is set.
type Commands struct {
	Actions Actions
	// Role is what the upstream may do, as a user of that role may
	// through the API (auth.Operator: power, provisioning, heartbeats).
	Role string
}

// A command is published at <prefix>slipway/v1/commands/<name>, and its
// result at <prefix>slipway/v1/commands/<name>/result.
const (
	commandsTopic = "slipway/v1/commands/"
	resultSuffix  = "/result"
	// commandsQueued bounds the commands waiting to run: a flood from
	// upstream is answered "busy", never queued without end.
	commandsQueued = 64
	// commandTimeout bounds one command (a BMC that does not answer).
	commandTimeout = 2 * time.Minute
)

// command is a command as sent from upstream.
type command struct {
	ID        string `json:"id"` // echoed in the result, to match the two
	MachineID string `json:"machine_id"`
	BMCID     string `json:"bmc_id"`
	Action    string `json:"action"`    // power: on, off, shutdown, restart
	HTTPBoot  bool   `json:"http_boot"` // provision
	BootMode  string `json:"boot_mode"` // provision: UEFI, Legacy or ""
	name      string
}

// commandResult is what the bridge publishes once a command ran.
type commandResult struct {
	ID     string `json:"id,omitempty"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Result any    `json:"result,omitempty"`
	At     string `json:"at"`
}

// commandRanks are the commands and the role each needs.
var commandRanks = map[string]string{"power": auth.Operator, "provision": auth.Operator, "reset-heartbeats": auth.Operator}

// commandRunner runs one session's commands, one at a time, in order.
type commandRunner struct {
	b      *Bridge
	client paho.Client
	queue  chan command
}

// listen subscribes to the site's command topics and runs what comes
// until ctx ends; commands sent while the bridge was away are not kept
// (a clean session): a power command hours late would be a surprise.
func (b *Bridge) listen(ctx context.Context, client paho.Client) error {
	if b.cfg.Commands.Actions == nil {
		return nil
	}
	r := &commandRunner{b: b, client: client, queue: make(chan command, commandsQueued)}
	filter := b.cfg.Prefix + commandsTopic + "+"
	if err := wait(ctx, client.Subscribe(filter, 1, r.received), b.times.ack); err != nil {
		return fmt.Errorf("subscribe to %s upstream: %w", filter, err)
	}
	go r.run(ctx)
	return nil
}

// received queues a command; it runs on the client's goroutine, which
// must not wait on a BMC.
func (r *commandRunner) received(_ paho.Client, m paho.Message) {
	name := strings.TrimPrefix(m.Topic(), r.b.cfg.Prefix+commandsTopic)
	var c command
	if err := json.Unmarshal(m.Payload(), &c); err != nil {
		r.reply(name, commandResult{Error: fmt.Sprintf("the command is not JSON: %v", err)})
		return
	}
	c.name = name
	select {
	case r.queue <- c:
	default:
		r.reply(name, commandResult{ID: c.ID, Error: fmt.Sprintf("busy: %d commands wait already; send it again later", commandsQueued)})
	}
}

func (r *commandRunner) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-r.queue:
			r.reply(c.name, r.b.runCommand(ctx, c))
		}
	}
}

func (r *commandRunner) reply(name string, res commandResult) {
	res.At = r.b.cfg.Now().UTC().Format(time.RFC3339)
	p, _ := json.Marshal(res)
	// Fire and forget: a result lost with the connection is not sent again,
	// and the command is not run again either.
	r.client.Publish(r.b.cfg.Prefix+commandsTopic+name+resultSuffix, 1, false, p)
}

// runCommand checks a command against the role and runs it.
func (b *Bridge) runCommand(ctx context.Context, c command) commandResult {
	res := commandResult{ID: c.ID}
	need, known := commandRanks[c.name]
	switch {
	case !known:
		res.Error = fmt.Sprintf("%q is not a command: use power, provision or reset-heartbeats", c.name)
	case auth.Rank(b.cfg.Commands.Role) < auth.Rank(need):
		res.Error = fmt.Sprintf("%s needs the %s role; bridge.commands.role is %s", c.name, need, b.cfg.Commands.Role)
	default:
		ctx, cancel := context.WithTimeout(ctx, commandTimeout)
		defer cancel()
		var err error
		res.Result, err = b.act(ctx, c)
		res.OK = err == nil
		if err != nil {
			res.Result, res.Error = nil, err.Error()
		}
	}
	log := b.cfg.Log.With("command", c.name, "id", c.ID, "machine_id", c.MachineID, "bmc_id", c.BMCID, "action", c.Action)
	if res.OK {
		log.Info("command from upstream done")
	} else {
		log.Warn("command from upstream refused or failed", "error", res.Error)
	}
	return res
}

// act runs a command the role allows.
func (b *Bridge) act(ctx context.Context, c command) (any, error) {
	do := b.cfg.Commands.Actions
	switch c.name {
	case "power":
		a, err := bmc.ParsePowerAction(c.Action)
		if err != nil || c.BMCID == "" {
			return nil, cmp.Or(err, errors.New("bmc_id is missing"))
		}
		reset, err := do.Power(ctx, c.BMCID, a)
		return map[string]string{"bmc_id": c.BMCID, "action": string(a), "reset_type": reset}, err
	case "provision":
		if c.BootMode != "" && c.BootMode != "UEFI" && c.BootMode != "Legacy" {
			return nil, fmt.Errorf("boot_mode %q: use UEFI or Legacy, or leave it out to keep the machine's", c.BootMode)
		}
		if c.MachineID == "" {
			return nil, errors.New("machine_id is missing")
		}
		p, err := do.Provision(ctx, c.MachineID, bmc.ProvisionOptions{HTTPBoot: c.HTTPBoot, Mode: c.BootMode})
		return map[string]string{"machine_id": p.MachineID, "bmc_id": p.BMCID, "target": p.Target, "state": p.State.Label()}, err
	default: // reset-heartbeats
		if c.MachineID == "" {
			return nil, errors.New("machine_id is missing")
		}
		n, err := do.ResetOnboarding(ctx, c.MachineID)
		return map[string]any{"machine_id": c.MachineID, "heartbeats_forgotten": n}, err
	}
}
