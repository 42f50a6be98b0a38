package design

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/slipway/slipway/appliance/domain"
)

func loadSite(t *testing.T) *Design {
	t.Helper()
	text, err := os.ReadFile("testdata/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(text, []string{"default", "rescue"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSiteParses(t *testing.T) {
	d := loadSite(t)
	if !d.Valid() {
		t.Fatalf("errors: %v", d.Errors())
	}
	if len(d.Nodes) != 3 || len(d.BootActions) != 2 || len(d.Racks) != 2 || len(d.Profiles) != 2 {
		t.Fatalf("nodes %d, actions %d, racks %d, profiles %d", len(d.Nodes), len(d.BootActions), len(d.Racks), len(d.Profiles))
	}
	var notes []string
	for _, p := range d.Problems {
		notes = append(notes, p.String())
	}
	for _, want := range []string{"drydock/Region/v1 lab: accepted, not used", "drydock/Network/v1 oob: accepted, not used", "pegleg/SiteDefinition/v1 lab: not a Drydock document"} {
		if !slices.ContainsFunc(notes, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("no note %q in %q", want, notes)
		}
	}
	n2, _ := d.Node("node2")
	got := n2.Listed([]string{"default"})
	want := domain.Listed{ID: "node2", Source: "design", MACs: []domain.MAC{"52:54:00:00:00:12"}, MachineInfo: domain.MachineInfo{Hostname: "node2",
		Profile: "default", RackID: "rack-a", RackName: "rack-a", TrayType: "compute", BMCEndpoint: "https://10.88.1.12"}}
	if !equalListed(got, want) {
		t.Errorf("listed %+v, want %+v", got, want)
	}
	// Inherited through compute → base: tags of both, the oob of base.
	if !slices.Equal(n2.Tags(), []string{"base", "compute", "gpu"}) || n2.OOB.Account != "admin" || n2.Labels()["role"] != "compute" {
		t.Errorf("inherited: tags %v oob %+v labels %v", n2.Tags(), n2.OOB, n2.Labels())
	}
}

func equalListed(a, b domain.Listed) bool {
	return a.ID == b.ID && a.Source == b.Source && slices.Equal(a.MACs, b.MACs) && a.MachineInfo == b.MachineInfo
}

func TestSelect(t *testing.T) {
	d := loadSite(t)
	set := func(typ string, s FilterSet) *NodeFilter {
		s.FilterType = typ
		return &NodeFilter{FilterSetType: Union, FilterSet: []FilterSet{s}}
	}
	for _, tc := range []struct {
		name   string
		filter *NodeFilter
		want   []string
	}{
		{"no filter", nil, []string{"node1", "node2", "node3"}},
		{"empty set", &NodeFilter{FilterSetType: Intersection}, []string{"node1", "node2", "node3"}},
		{"names", set(Union, FilterSet{NodeNames: []string{"node3", "node1"}}), []string{"node1", "node3"}},
		{"tags", set(Union, FilterSet{NodeTags: []string{"gpu"}}), []string{"node2"}},
		{"labels", set(Union, FilterSet{NodeLabels: map[string]string{"role": "storage"}}), []string{"node3"}},
		{"racks", set(Union, FilterSet{RackNames: []string{"rack-a"}}), []string{"node1", "node2"}},
		{"rack labels", set(Union, FilterSet{RackLabels: map[string]string{"row": "2"}}), []string{"node3"}},
		{"union of criteria", set(Union, FilterSet{NodeNames: []string{"node3"}, NodeTags: []string{"gpu"}}), []string{"node2", "node3"}},
		{"intersection of criteria", set(Intersection, FilterSet{RackNames: []string{"rack-a"}, NodeTags: []string{"gpu"}}), []string{"node2"}},
		{"intersection of sets", &NodeFilter{FilterSetType: Intersection, FilterSet: []FilterSet{
			{FilterType: Union, RackNames: []string{"rack-a"}}, {FilterType: Union, NodeNames: []string{"node1", "node3"}}}}, []string{"node1"}},
		{"union of sets", &NodeFilter{FilterSetType: Union, FilterSet: []FilterSet{
			{FilterType: Union, NodeNames: []string{"node1"}}, {FilterType: Union, NodeNames: []string{"node3"}}}}, []string{"node1", "node3"}},
		{"the CLI's -n", &NodeFilter{FilterSetType: Intersection, FilterSet: []FilterSet{
			{FilterType: Union, NodeNames: []string{"node2"}, RackNames: []string{}}}}, []string{"node2"}},
		{"nothing matches", set(Union, FilterSet{NodeNames: []string{"nope"}}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.Select(tc.filter)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("Select = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if _, err := d.Select(&NodeFilter{FilterSetType: "both"}); err == nil {
		t.Error("an unknown filter_set_type was accepted")
	}
	if got := names(d.ActionsFor("node3")); !slices.Equal(got, []string{"hello", "report"}) {
		t.Errorf("node3's actions %v", got)
	}
	if got := names(d.ActionsFor("node1")); !slices.Equal(got, []string{"hello"}) {
		t.Errorf("node1's actions %v", got)
	}
}

func names(as []BootAction) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Name)
	}
	return out
}

// doc is a one-document design with the given data under schema.
func doc(schema, name, data string) string {
	return "---\nschema: " + schema + "\nmetadata:\n  name: " + name + "\ndata:\n" + data + "\n"
}

const profile = "---\nschema: drydock/HostProfile/v1\nmetadata:\n  name: p\ndata:\n  oob: {type: redfish, network: oob, account: a}\n"

func TestProblems(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		level      Level
		field      string
		says       string
	}{
		{"unknown field", doc(SchemaNode, "n1", "  host_profile: p\n  colour: red\n  metadata: {boot_mac: '52:54:00:00:00:01'}") + profile, Error, "data", "colour"},
		{"missing profile", doc(SchemaNode, "n1", "  host_profile: nope"), Error, "data.host_profile", `no drydock/HostProfile/v1 named "nope"`},
		{"profile loop", doc(SchemaNode, "n1", "  host_profile: a") + doc(SchemaProfile, "a", "  host_profile: b") + doc(SchemaProfile, "b", "  host_profile: a"), Error, "data.host_profile", "inherits from itself"},
		{"duplicate node", doc(SchemaNode, "n1", "  metadata: {boot_mac: '52:54:00:00:00:01'}") + doc(SchemaNode, "n1", "  metadata: {boot_mac: '52:54:00:00:00:01'}"), Error, "metadata.name", "a second node"},
		{"bad hostname", doc(SchemaNode, "n_1", "  metadata: {boot_mac: '52:54:00:00:00:01'}"), Error, "metadata.name", "not a valid hostname"},
		{"bad mac", doc(SchemaNode, "n1", "  metadata: {boot_mac: 'zz'}"), Error, "data.metadata.boot_mac", "not a MAC"},
		{"no oob address", doc(SchemaNode, "n1", "  host_profile: p") + profile, Error, "data.addressing", `no address on the oob network "oob"`},
		{"bad oob address", doc(SchemaNode, "n1", "  host_profile: p\n  addressing: [{network: oob, address: dhcp}]") + profile, Error, "data.addressing", "not an IP address"},
		{"unknown oob type", doc(SchemaNode, "n1", "  oob: {type: amt}"), Error, "data.oob.type", `unknown oob type "amt"`},
		{"ipmi", doc(SchemaNode, "n1", "  oob: {type: ipmi, network: oob, account: a}\n  addressing: [{network: oob, address: 10.0.0.1}]"), Warning, "data.oob.type", "over Redfish"},
		{"nothing to know it by", doc(SchemaNode, "n1", "  oob: {type: manual}"), Warning, "data.metadata.boot_mac", "known by its name only"},
		{"unknown image", doc(SchemaNode, "n1", "  platform: {image: xenial}\n  metadata: {boot_mac: '52:54:00:00:00:01'}"), Warning, "data.platform.image", `no boot profile "xenial"`},
		{"unknown rack", doc(SchemaNode, "n1", "  metadata: {rack: r9, boot_mac: '52:54:00:00:00:01'}") + doc(SchemaRack, "r1", "  {}"), Warning, "data.metadata.rack", `no drydock/Rack/v1 named "r9"`},
		{"no name", "---\nschema: drydock/Rack/v1\nmetadata: {}\ndata: {}\n", Error, "metadata.name", "has no name"},
		{"no data", "---\nschema: drydock/Rack/v1\nmetadata: {name: r}\n", Error, "data", "no data"},
		{"unknown drydock schema", doc("drydock/Widget/v1", "w", "  {}"), Warning, "schema", "does not know"},
		{"asset without type", doc(SchemaBootAction, "b", "  assets: [{path: /x, data: y}]"), Error, "data.assets[0].type", "missing"},
		{"asset bad type", doc(SchemaBootAction, "b", "  assets: [{path: /x, type: dir}]"), Error, "data.assets[0].type", `"dir"`},
		{"asset relative path", doc(SchemaBootAction, "b", "  assets: [{path: x, type: file, data: y}]"), Error, "data.assets[0].path", "not a clean absolute path"},
		{"asset bad mode", doc(SchemaBootAction, "b", "  assets: [{path: /x, type: file, data: y, permissions: '999'}]"), Error, "data.assets[0].permissions", "octal"},
		{"asset bad pipeline", doc(SchemaBootAction, "b", "  assets: [{path: /x, type: file, data: y, data_pipeline: [gunzip]}]"), Error, "data.assets[0].data_pipeline", `"gunzip"`},
		{"asset data and location", doc(SchemaBootAction, "b", "  assets: [{path: /x, type: file, data: y, location: 'http://h/x'}]"), Error, "data.assets[0]", "not both"},
		{"asset location not http", doc(SchemaBootAction, "b", "  assets: [{path: /x, type: file, location: 'ftp://h/x'}]"), Error, "data.assets[0].location", "not an http(s) URL"},
		{"filter type", doc(SchemaBootAction, "b", "  node_filter: {filter_set_type: all, filter_set: []}"), Error, "data.node_filter", "filter_set_type"},
		{"filter names a stranger", doc(SchemaBootAction, "b", "  node_filter: {filter_set_type: union, filter_set: [{filter_type: union, node_names: [ghost]}]}"), Warning, "data.node_filter.filter_set[0].node_names", `"ghost"`},
		{"no nodes", doc(SchemaRack, "r", "  {}"), Warning, "", "nothing to deploy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse([]byte(tc.text), []string{"default"})
			if err != nil {
				t.Fatal(err)
			}
			found := slices.ContainsFunc(d.Problems, func(p Problem) bool {
				return p.Level == tc.level && p.Field == tc.field && strings.Contains(p.Message, tc.says)
			})
			if !found {
				t.Errorf("no %s at %q saying %q in %v", tc.level, tc.field, tc.says, d.Problems)
			}
			if d.Valid() == (tc.level == Error) {
				t.Errorf("Valid() = %v with %v", d.Valid(), d.Problems)
			}
		})
	}
}

func TestNotYAML(t *testing.T) {
	for _, text := range []string{"schema: [", "\t- x"} {
		if _, err := Parse([]byte(text), nil); err == nil {
			t.Errorf("%q parsed", text)
		}
	}
}

func TestRenderAndTarball(t *testing.T) {
	d := loadSite(t)
	n3, _ := d.Node("node3")
	vars := Vars{Node: NodeVars(n3), Action: map[string]any{"report_url": "http://10.88.0.1/api/v1.0/bootactions/", "action_id": "01ID", "action_key": "beef"}}
	var files []File
	for _, ba := range d.ActionsFor("node3") {
		for _, a := range ba.Assets {
			data, err := a.Render(context.Background(), vars, nil)
			if err != nil {
				t.Fatalf("%s %s: %v", ba.Name, a.Path, err)
			}
			if a.Type == AssetPkgList {
				if string(data) != "curl\njq=1.6" {
					t.Errorf("packages %q", data)
				}
				continue
			}
			files = append(files, File{Path: a.Path, Mode: a.Mode(), Data: data})
		}
	}
	var buf bytes.Buffer
	if err := WriteTarball(&buf, files); err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		got[h.Name] = string(body)
		if h.Uid != 0 || h.ModTime.Unix() != 0 {
			t.Errorf("%s: uid %d mtime %v", h.Name, h.Uid, h.ModTime)
		}
		if h.Name == "/usr/local/bin/hello.sh" && h.Mode != 0o755 || h.Name == "/etc/systemd/system/hello.service" && h.Mode != 0o600 {
			t.Errorf("%s: mode %o", h.Name, h.Mode)
		}
	}
	if got["/usr/local/bin/hello.sh"] != "#!/bin/sh\necho hello from node3" {
		t.Errorf("templated script %q", got["/usr/local/bin/hello.sh"])
	}
	if got["/etc/slipway-report"] != "http://10.88.0.1/api/v1.0/bootactions/01ID beef" {
		t.Errorf("report file %q", got["/etc/slipway-report"])
	}
}

func TestTemplatesCannotReadFiles(t *testing.T) {
	a := Asset{Type: AssetFile, Path: "/x", Data: `{% include "/etc/hostname" %}`, DataPipeline: []string{"template"}}
	if out, err := a.Render(context.Background(), Vars{}, nil); err == nil {
		t.Errorf("a template included a file of the box: %q", out)
	}
}

func FuzzParse(f *testing.F) {
	site, _ := os.ReadFile("testdata/site.yaml")
	f.Add(site)
	f.Add([]byte(profile))
	f.Fuzz(func(t *testing.T, text []byte) {
		d, err := Parse(text, []string{"default"})
		if err != nil {
			return
		}
		for _, n := range d.Nodes {
			_ = n.Listed(nil)
			_ = d.ActionsFor(n.Name)
		}
	})
}

func TestBMCEndpoint(t *testing.T) {
	for _, tc := range []struct{ oob, addr, want string }{
		{"{type: redfish, network: oob, account: a}", "10.0.0.5", "https://10.0.0.5"},
		{"{type: ipmi, network: oob, account: a}", "fd00::5", "https://[fd00::5]"},
		{"{type: redfish, account: a, endpoint: 'http://127.0.0.1:8443/'}", "", "http://127.0.0.1:8443"},
		{"{type: manual}", "10.0.0.5", ""},
	} {
		text := doc(SchemaNode, "n1", "  oob: "+tc.oob+"\n  addressing: [{network: oob, address: '"+tc.addr+"'}]\n  metadata: {boot_mac: '52:54:00:00:00:01'}")
		d, err := Parse([]byte(text), nil)
		if err != nil || !d.Valid() {
			t.Fatalf("%s: %v %v", tc.oob, err, d.Errors())
		}
		if got := d.Nodes[0].BMCEndpoint(); got != tc.want {
			t.Errorf("%s: endpoint %q, want %q", tc.oob, got, tc.want)
		}
	}
	d, _ := Parse([]byte(doc(SchemaNode, "n1", "  oob: {type: redfish, account: a, endpoint: 'ftp://x'}")), nil)
	if d.Valid() {
		t.Error("an ftp endpoint was accepted")
	}
}

// A remote asset is fetched from the LAN when rendered: its location
// templated first, then the data through the pipeline.
func TestRemoteAsset(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/assets/node7.sh":
			_, _ = w.Write([]byte("echo {{ node.hostname }} from the LAN"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	lib := &Library{Dir: root}
	vars := Vars{Node: map[string]any{"hostname": "node7"}}
	a := Asset{Type: AssetFile, Path: "/x", Location: srv.URL + "/assets/{{ node.hostname }}.sh", LocationPipeline: []string{"template"}, DataPipeline: []string{"template"}}
	out, err := a.Render(context.Background(), vars, lib)
	if err != nil || string(out) != "echo node7 from the LAN" {
		t.Errorf("rendered %q, %v", out, err)
	}
	a.Location = srv.URL + "/missing"
	if _, err := a.Render(context.Background(), vars, lib); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a missing location: %v", err)
	}
}
