package cloudinit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/slipway/slipway/appliance/deploy"
)

func TestWithBootActions(t *testing.T) {
	nc := deploy.NodeContext{Node: "node1", Key: "ab12", ReportURL: "http://10.88.0.1/api/v1.0/bootactions/", Packages: []string{"jq=1.6"},
		Actions: []deploy.ContextAction{
			{ID: "01A", Name: "it's quoted", Signaling: true, Units: []string{"a.service"}},
			{ID: "01B", Name: "silent", Units: []string{"b.service"}},
		}}
	for _, tc := range []struct{ name, userData string }{
		{"a profile's own user-data", "#cloud-config\nhostname: node1\npackages: [curl]\nruncmd:\n  - echo first\nwrite_files:\n  - {path: /etc/x, content: y}\n"},
		{"an empty mapping", "#cloud-config\n{}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := withBootActions([]byte(tc.userData), nc)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckUserData(out); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			var doc struct {
				Hostname   string `yaml:"hostname"`
				Packages   []string
				Runcmd     []any
				WriteFiles []struct{ Path, Permissions, Content string } `yaml:"write_files"`
			}
			if err := yaml.Unmarshal(out, &doc); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(tc.userData, "hostname") && (doc.Hostname != "node1" || doc.Packages[0] != "curl" || doc.Runcmd[0] != "echo first" || doc.WriteFiles[0].Path != "/etc/x") {
				t.Errorf("the profile's own user-data was not kept: %s", out)
			}
			if doc.Packages[len(doc.Packages)-1] != "jq=1.6" {
				t.Errorf("packages %v", doc.Packages)
			}
			files := map[string]string{}
			for _, f := range doc.WriteFiles {
				files[f.Path] = f.Permissions
				if f.Path == ScriptFile {
					checkScript(t, f.Content)
				}
			}
			if files[KeyFile] != "0600" || files[ScriptFile] != "0700" || files[ManifestFile] != "0600" {
				t.Errorf("write_files %v", files)
			}
		})
	}
}

// checkScript: sh parses it, it reports the signaling action only, and
// the quote in an action's name stays inside its quotes.
func checkScript(t *testing.T, script string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.sh")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-n", path).CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v %s\n%s", err, out, script)
	}
	if !strings.Contains(script, "report 01A ") || strings.Contains(script, "report 01B") || !strings.Contains(script, "start_units 'b.service'") {
		t.Errorf("script:\n%s", script)
	}
	if !strings.Contains(script, `it'\''s quoted`) {
		t.Errorf("the quote was not escaped:\n%s", script)
	}
}
