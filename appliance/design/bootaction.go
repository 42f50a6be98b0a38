package design

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
)

// BootAction is a drydock/BootAction/v1: assets that a deploying node
// installs (files, systemd units, packages) and whether the node reports
// how running them went.
type BootAction struct {
	Name string
	// Signaling: the node reports a final status (Drydock's default); an
	// action that does not signal is recorded "unreported".
	Signaling bool
	Assets    []Asset
	Filter    *NodeFilter // nil: every node
}

// Asset types.
const (
	AssetFile    = "file"
	AssetUnit    = "unit"
	AssetPkgList = "pkg_list"
)

// Asset is one thing a boot action puts on a node.
type Asset struct {
	Path string `yaml:"path"`
	// Location, if set, is a URL the data is fetched from (on the LAN).
	Location         string   `yaml:"location"`
	Type             string   `yaml:"type"`
	Data             any      `yaml:"data"` // a string; for pkg_list also a map of package → version
	LocationPipeline []string `yaml:"location_pipeline"`
	DataPipeline     []string `yaml:"data_pipeline"`
	Permissions      string   `yaml:"permissions"` // octal, e.g. "555"; default 600
}

type bootActionDoc struct {
	Signaling  *bool       `yaml:"signaling"`
	Assets     []Asset     `yaml:"assets"`
	NodeFilter *NodeFilter `yaml:"node_filter"`
}

var pipelineSteps = []string{"base64_encode", "base64_decode", "utf8_encode", "utf8_decode", "template"}

var octalMode = regexp.MustCompile(`^[0-7]{3,4}$`)

// unitName is a systemd unit's file name: a node enables it by that name.
var unitName = regexp.MustCompile(`^[A-Za-z0-9:_.@-]+\.[a-z]+$`)

func (d *Design) checkBootActions() {
	for _, ba := range d.BootActions {
		ref := Ref{SchemaBootAction, ba.Name}
		for i, a := range ba.Assets {
			at := fmt.Sprintf("data.assets[%d]", i)
			d.checkAsset(ref, at, a)
		}
		if ba.Filter != nil {
			d.checkFilter(ref, "data.node_filter", ba.Filter)
		}
	}
}

func (d *Design) checkAsset(ref Ref, at string, a Asset) {
	switch a.Type {
	case AssetFile, AssetUnit:
		if !strings.HasPrefix(a.Path, "/") || path.Clean(a.Path) != a.Path {
			d.add(Error, ref, at+".path", "%q is not a clean absolute path", a.Path)
		}
		if a.Type == AssetUnit && !unitName.MatchString(path.Base(a.Path)) {
			d.add(Error, ref, at+".path", "%q is not a systemd unit name (letters, digits and :_.@- then .service, .timer…)", path.Base(a.Path))
		}
	case AssetPkgList:
	case "":
		d.add(Error, ref, at+".type", "the asset type is missing (file, unit or pkg_list)")
	default:
		d.add(Error, ref, at+".type", "unknown asset type %q (file, unit or pkg_list)", a.Type)
	}
	if a.Permissions != "" && !octalMode.MatchString(a.Permissions) {
		d.add(Error, ref, at+".permissions", "%q is not an octal mode such as 644", a.Permissions)
	}
	for _, step := range a.DataPipeline {
		if !slices.Contains(pipelineSteps, step) {
			d.add(Error, ref, at+".data_pipeline", "unknown step %q (%s)", step, strings.Join(pipelineSteps, ", "))
		}
	}
	for _, step := range a.LocationPipeline {
		if step != "template" {
			d.add(Error, ref, at+".location_pipeline", "unknown step %q (only template)", step)
		}
	}
	switch {
	case a.Location != "" && a.Data != nil:
		d.add(Error, ref, at, "give data or location, not both")
	case a.Location != "" && !strings.HasPrefix(a.Location, "http://") && !strings.HasPrefix(a.Location, "https://"):
		d.add(Error, ref, at+".location", "%q is not an http(s) URL", a.Location)
	case a.Location == "" && a.Data == nil:
		d.add(Warning, ref, at+".data", "no data and no location: the asset is empty")
	}
	if _, isMap := a.Data.(map[string]any); isMap && a.Type != AssetPkgList {
		d.add(Error, ref, at+".data", "only a pkg_list asset takes a map of packages; give a string")
	}
}

// Mode is the asset's file mode (0600 when the design gives none).
func (a Asset) Mode() int64 {
	m, err := strconv.ParseInt(a.Permissions, 8, 32)
	if a.Permissions == "" || err != nil {
		return 0o600
	}
	return m
}

// Packages are a pkg_list asset's packages, each "name" or "name=version",
// sorted.
func (a Asset) Packages() []string {
	var out []string
	switch data := a.Data.(type) {
	case string:
		out = strings.Fields(data)
	case map[string]any:
		for name, v := range data {
			if v == nil || v == "" {
				out = append(out, name)
			} else {
				out = append(out, fmt.Sprintf("%s=%v", name, v))
			}
		}
	}
	sort.Strings(out)
	return out
}

// Fetcher reads an asset's location.
type Fetcher interface {
	Fetch(ctx context.Context, url string) ([]byte, error)
}

// Vars are what an asset's templates see: node.* and action.*, as
// Drydock's boot action templates use them.
type Vars struct {
	Node   map[string]any
	Action map[string]any
}

// NodeVars are a node's template variables: hostname, domain, tags,
// labels, network (per network: ip), rack.
func NodeVars(n Node) map[string]any {
	networks := map[string]any{}
	for _, a := range n.Addressing {
		networks[a.Network] = map[string]any{"ip": a.Address}
	}
	tags := n.Tags()
	if tags == nil {
		tags = []string{}
	}
	labels := map[string]any{}
	for k, v := range n.Labels() {
		labels[k] = v
	}
	return map[string]any{"hostname": n.Name, "domain": "", "tags": tags, "labels": labels, "network": networks, "rack": n.Rack()}
}

// Render is the asset's content for a node: its data or what its location
// holds, through its pipeline.
func (a Asset) Render(ctx context.Context, vars Vars, fetch Fetcher) ([]byte, error) {
	var data []byte
	switch {
	case a.Location != "":
		loc := a.Location
		if slices.Contains(a.LocationPipeline, "template") {
			out, err := render(loc, vars)
			if err != nil {
				return nil, fmt.Errorf("location: %w", err)
			}
			loc = string(out)
		}
		if fetch == nil {
			return nil, fmt.Errorf("location %s: this box fetches no remote assets here", loc)
		}
		var err error
		if data, err = fetch.Fetch(ctx, loc); err != nil {
			return nil, fmt.Errorf("location %s: %w", loc, err)
		}
	case a.Type == AssetPkgList:
		data = []byte(strings.Join(a.Packages(), "\n"))
	default:
		s, _ := a.Data.(string)
		data = []byte(s)
	}
	for _, step := range a.DataPipeline {
		var err error
		if data, err = pipe(step, data, vars); err != nil {
			return nil, fmt.Errorf("data_pipeline %s: %w", step, err)
		}
	}
	return data, nil
}

func pipe(step string, data []byte, vars Vars) ([]byte, error) {
	switch step {
	case "base64_decode":
		// Designs fold long base64 over lines.
		return base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(data)), ""))
	case "base64_encode":
		return []byte(base64.StdEncoding.EncodeToString(data)), nil
	case "utf8_decode":
		if !utf8.Valid(data) {
			return nil, errors.New("the data is not UTF-8 text")
		}
		return data, nil
	case "utf8_encode":
		return data, nil
	case "template":
		if !utf8.Valid(data) {
			return nil, errors.New("a template must be UTF-8 text (decode base64 first)")
		}
		return render(string(data), vars)
	}
	return nil, fmt.Errorf("unknown step %q", step)
}

// render runs a Jinja template with vars. The template can include
// nothing: its loader holds only itself, never the box's files.
func render(text string, vars Vars) ([]byte, error) {
	loader, err := loaders.NewMemoryLoader(map[string]string{"/asset": text})
	if err != nil {
		return nil, err
	}
	tpl, err := exec.NewTemplate("/asset", gonja.DefaultConfig, loader, gonja.DefaultEnvironment)
	if err != nil {
		return nil, err
	}
	out, err := tpl.ExecuteToBytes(exec.NewContext(map[string]any{"node": vars.Node, "action": vars.Action}))
	if err != nil {
		return nil, err
	}
	return out, nil
}

// File is a rendered asset, ready for a node's boot data tarball.
type File struct {
	Path string
	Mode int64
	Data []byte
}

// WriteTarball writes files as a gzipped GNU tar: members named by their
// absolute path (the node unpacks with tar -P), owned by root, dated the
// epoch, with each asset's mode.
func WriteTarball(w io.Writer, files []File) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.Path, Mode: f.Mode, Size: int64(len(f.Data)),
			ModTime: time.Unix(0, 0), Uname: "root", Gname: "root", Format: tar.FormatGNU}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar %s: %w", f.Path, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return fmt.Errorf("tar %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
