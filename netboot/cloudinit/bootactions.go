package cloudinit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/slipway/slipway/appliance/deploy"
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
		map[string]any{"path": ScriptFile, "permissions": "0700", "owner": "root:root", "content": bootActionScript(nc)})
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
// Airship's nodes do in curtin's late commands (fetch, unpack with -P,
// enable the units), then each action's status reported as baclient would.
func bootActionScript(nc deploy.NodeContext) string {
	var b strings.Builder
	base := strings.TrimSuffix(nc.ReportURL, "/")
	fmt.Fprintf(&b, `#!/bin/sh
# Slipway: boot actions for %[1]s. Fetches its boot data with its key,
# unpacks it (absolute paths), enables and starts each action's units, and
# reports each action's status; a status already final is left as it is.
set -u
url=%[2]s
key=$(cat "${SLIPWAY_BOOTACTION_KEY_FILE:-%[3]s}")
work=${SLIPWAY_BOOTACTION_DIR:-/var/lib/slipway}
mkdir -p "$work"
unpacked=yes
for kind in files units; do
  if curl -fsS -H "X-Bootaction-Key: $key" -o "$work/$kind.tar.gz" "$url/nodes/%[1]s/$kind"; then
    tar -xPzf "$work/$kind.tar.gz" || unpacked=no
  else
    unpacked=no
  fi
done
command -v systemctl >/dev/null && systemctl daemon-reload
report() {
  curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' -H "X-Bootaction-Key: $key" -d "$2" "$url/$1/" || true
}
`, nc.Node, shellQuote(base), KeyFile)
	for _, a := range nc.Actions {
		fmt.Fprintf(&b, "\n# %s (%s)\nok=$unpacked\n", a.Name, a.ID)
		for _, u := range a.Units {
			fmt.Fprintf(&b, "[ $ok = yes ] && { systemctl enable %[1]s && systemctl start %[1]s || ok=no; }\n", shellQuote(u))
		}
		if !a.Signaling {
			continue
		}
		fmt.Fprintf(&b, "if [ $ok = yes ]; then report %s %s; else report %s %s; fi\n",
			a.ID, shellQuote(reportBody("success", "boot action "+a.Name+": boot data unpacked, units started", false)),
			a.ID, shellQuote(reportBody("failure", "boot action "+a.Name+": boot data not unpacked or a unit failed", true)))
	}
	return b.String()
}

func reportBody(status, msg string, isError bool) string {
	body, _ := json.Marshal(map[string]any{"status": status, "details": []map[string]any{{"message": msg, "error": isError}}})
	return string(body)
}

// shellQuote quotes s for sh: single quotes, with each ' closed, escaped
// and reopened.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
