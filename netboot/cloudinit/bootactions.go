package cloudinit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/slipway/slipway/appliance/deploy"
	"github.com/slipway/slipway/appliance/domain"
)

// BootActions finds a deploying node's boot action context.
type BootActions interface {
	DeployingContext(ctx context.Context, node string) (deploy.NodeContext, bool, error)
}

// Where the node keeps what its boot actions need.
const (
	KeyFile      = "/etc/slipway/bootaction.key"
	ScriptFile   = "/etc/slipway/bootactions.sh"
	ManifestFile = "/etc/slipway/bootactions.json"
)

// Manifest is ManifestFile: the node's boot actions, for tools on the node
// (baclient's -id and -url come from it).
type Manifest struct {
	Node      string           `json:"node"`
	ReportURL string           `json:"report_url"` // …/api/v1.0/bootactions/
	Actions   []ManifestAction `json:"actions"`
}

// ManifestAction is one boot action in the manifest.
type ManifestAction struct {
	ID        string   `json:"action_id"`
	Name      string   `json:"name"`
	Signaling bool     `json:"signaling"`
	Units     []string `json:"units"`
}

func manifest(nc deploy.NodeContext) string {
	m := Manifest{Node: nc.Node, ReportURL: nc.ReportURL, Actions: []ManifestAction{}}
	for _, a := range nc.Actions {
		units := a.Units
		if units == nil {
			units = []string{}
		}
		m.Actions = append(m.Actions, ManifestAction{ID: a.ID, Name: a.Name, Signaling: a.Signaling, Units: units})
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return string(b) + "\n"
}

// withBootActions adds a deploying node's boot actions to its user-data:
// the key (as a file, for baclient -keyfile), a script that fetches and
// unpacks its boot data, enables and starts each action's units and
// reports each action's status, run by runcmd, and the pkg_list packages.
func withBootActions(userData []byte, nc deploy.NodeContext) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(userData, &doc); err != nil {
		return nil, err
	}
	if doc == nil {
		doc = map[string]any{}
	}
	files, _ := doc["write_files"].([]any)
	doc["write_files"] = append(files,
		map[string]any{"path": KeyFile, "permissions": "0600", "owner": "root:root", "content": nc.Key + "\n"},
		map[string]any{"path": ManifestFile, "permissions": "0600", "owner": "root:root", "content": manifest(nc)},
		map[string]any{"path": ScriptFile, "permissions": "0700", "owner": "root:root",
			"content": bootActionScript(nc, `key=$(cat "${SLIPWAY_BOOTACTION_KEY_FILE:-`+KeyFile+`}")`)})
	runcmd, _ := doc["runcmd"].([]any)
	doc["runcmd"] = append(runcmd, []any{ScriptFile})
	if len(nc.Packages) > 0 {
		pkgs, _ := doc["packages"].([]any)
		for _, p := range nc.Packages {
			pkgs = append(pkgs, p)
		}
		doc["packages"] = pkgs
	}
	body, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return append([]byte("#cloud-config\n# Slipway: this node is deploying; its boot actions run from "+ScriptFile+"\n"), body...), nil
}

// bootActionScript is the shell script a deploying node runs: what
// Airship's nodes do in curtin's late commands (fetch with the key, unpack
// to /, enable the units), then each action's status reported as baclient
// would. It needs sh, tar and curl or wget (busybox's will do); keyLine
// sets $key (from KeyFile, or the key itself for the standalone script).
func bootActionScript(nc deploy.NodeContext, keyLine string) string {
	var b strings.Builder
	base := strings.TrimSuffix(nc.ReportURL, "/")
	fmt.Fprintf(&b, `#!/bin/sh
# Slipway: boot actions for %[1]s. Fetches its boot data with its key,
# unpacks it (members are absolute paths), enables and starts each action's
# units, and reports each action's status; a status already final stays.
set -u
url=%[2]s
%[3]s
work=${SLIPWAY_BOOTACTION_DIR:-/var/lib/slipway}
mkdir -p "$work"
get() {
  if command -v curl >/dev/null; then curl -fsS -H "X-Bootaction-Key: $key" -o "$2" "$1"
  else wget -q --header "X-Bootaction-Key: $key" -O "$2" "$1"; fi
}
report() {
  if command -v curl >/dev/null; then
    curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' -H "X-Bootaction-Key: $key" -d "$2" "$url/$1/" || true
  else
    wget -q -O /dev/null --header 'Content-Type: application/json' --header "X-Bootaction-Key: $key" --post-data "$2" "$url/$1/" || true
  fi
}
# start_units enables and starts units; why says what failed.
start_units() {
  for u in "$@"; do
    command -v systemctl >/dev/null || { why="no systemctl to start $u"; return 1; }
    systemctl enable "$u" && systemctl start "$u" || { why="unit $u failed to start"; return 1; }
  done
}
unpacked=yes
why=
for kind in files units; do
  if get "$url/nodes/%[1]s/$kind" "$work/$kind.tar.gz"; then
    tar -C / -xzf "$work/$kind.tar.gz" || { unpacked=no; why="$kind did not unpack"; }
  else
    unpacked=no; why="$kind could not be fetched"
  fi
done
command -v systemctl >/dev/null && systemctl daemon-reload
`, nc.Node, shellQuote(base), keyLine)
	for _, a := range nc.Actions {
		fmt.Fprintf(&b, "\n# %s (%s)\nok=$unpacked\n", strings.ReplaceAll(a.Name, "\n", " "), a.ID)
		if len(a.Units) > 0 {
			quoted := make([]string, len(a.Units))
			for i, u := range a.Units {
				quoted[i] = shellQuote(u)
			}
			fmt.Fprintf(&b, "[ $ok = yes ] && { start_units %s || ok=no; }\n", strings.Join(quoted, " "))
		}
		if !a.Signaling {
			continue
		}
		// The failure's reason is known only when it runs: the body is put
		// together then (why holds unit names, which designs keep plain).
		success := reportBody("success", "boot action "+a.Name+": boot data unpacked, units started", false)
		msg, _ := json.Marshal("boot action " + a.Name + ": ")
		before := `{"status":"failure","details":[{"error":true,"message":` + strings.TrimSuffix(string(msg), `"`)
		fmt.Fprintf(&b, "if [ $ok = yes ]; then report %s %s; else report %s %s\"$why\"%s; fi\n",
			a.ID, shellQuote(success), a.ID, shellQuote(before), shellQuote(`"}]}`))
	}
	return b.String()
}

// Script is the boot action script of a deploying machine with its key in
// it, for installers that run no cloud-init (a preseed's late_command, a
// kickstart's %post): wget -O- …/cloud-init/bootactions.sh?mac=… | sh.
func (r *Renderer) Script(ctx context.Context, mac domain.MAC) ([]byte, bool) {
	id, ok := r.machines.Owner(mac)
	if !ok || r.cfg.BootActions == nil {
		return nil, false
	}
	nc, ok, err := r.cfg.BootActions.DeployingContext(ctx, id)
	if err != nil {
		r.log.Warn("boot action script: no context", "machine_id", id, "error", err)
	}
	if err != nil || !ok {
		return nil, false
	}
	return []byte(bootActionScript(nc, "key="+shellQuote(nc.Key))), true
}

func reportBody(status, msg string, isError bool) string {
	body, _ := json.Marshal(map[string]any{"status": status, "details": []map[string]any{{"message": msg, "error": isError}}})
	return string(body)
}

// shellQuote quotes s for sh: single quotes, with each ' closed, escaped
// and reopened.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
