package drydock

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
)

// StatusNames maps Slipway's (NICo's) top-level machine states to the MAAS
// status names Drydock reports in status_name.
var StatusNames = map[string]string{
	domain.StateCreated:           "New",
	domain.StateHostInit:          "Deploying",
	domain.StateValidation:        "Testing",
	domain.StateReady:             "Deployed",
	domain.StateAssigned:          "Deployed",
	domain.StateHostReprovision:   "Deploying",
	domain.StateDPUReprovision:    "Deploying",
	domain.StateWaitingForCleanup: "Releasing",
	domain.StateFailed:            "Failed deployment",
	domain.StateForceDeletion:     "Releasing",
}

// listNodes: GET /nodes, every machine with Drydock's fields.
func listNodes(machines domain.MachinePager, bmcs BMCs) fiber.Handler {
	return func(c *fiber.Ctx) error {
		all, err := domain.AllMachines(c.UserContext(), machines)
		if err != nil {
			return err
		}
		byMachine := map[string]bmc.Status{}
		if bmcs != nil {
			for _, s := range bmcs.Statuses() {
				if s.MachineID != "" {
					byMachine[s.MachineID] = s
				}
			}
		}
		out := []fiber.Map{}
		for _, m := range all {
			b := byMachine[m.ID]
			name := StatusNames[m.StateName]
			if name == "" {
				name = m.StateName
			}
			node := fiber.Map{"hostname": hostname(m), "memory": b.Inventory.MemoryMiB, "cpu_count": b.Inventory.CPUCount,
				"status_name": name, "boot_mac": nil, "power_state": powerState(m, b), "power_address": nil, "boot_ip": nullable(m.IP)}
			if len(m.MACs) > 0 {
				node["boot_mac"] = string(m.MACs[0])
			}
			if b.Endpoint != "" {
				node["power_address"] = powerAddress(b.Endpoint)
			}
			out = append(out, node)
		}
		return c.JSON(out)
	}
}

func hostname(m domain.MachineRecord) string {
	if m.Hostname != "" {
		return m.Hostname
	}
	return m.ID
}

// powerState is MAAS's spelling: on, off, unknown.
func powerState(m domain.MachineRecord, b bmc.Status) string {
	p := strings.ToLower(m.Power)
	if p == "" {
		p = strings.ToLower(b.Inventory.PowerState)
	}
	if p == "on" || p == "off" {
		return p
	}
	return "unknown"
}

// powerAddress is the BMC's host, as MAAS reports power_address.
func powerAddress(endpoint string) string {
	host := strings.TrimPrefix(strings.TrimPrefix(endpoint, "https://"), "http://")
	host, _, _ = strings.Cut(host, "/")
	return host
}

// nodeBuildData: GET /nodes/{hostname}/builddata[?latest=true]; 404 when
// there is none, never an empty list.
func nodeBuildData(dep Deploy) fiber.Handler {
	return func(c *fiber.Ctx) error {
		latest := strings.EqualFold(c.Query("latest"), "true")
		rows, err := dep.NodeBuildData(c.UserContext(), c.Params("hostname"), latest)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return appError(fiber.StatusNotFound, "No build data found")
		}
		return c.JSON(buildDataJSON(rows))
	}
}

var errNoTask = errors.New("no task")
