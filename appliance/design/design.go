package design

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/slipway/slipway/appliance/domain"
)

// The schemas of the documents this box reads.
const (
	SchemaNode       = "drydock/BaremetalNode/v1"
	SchemaProfile    = "drydock/HostProfile/v1"
	SchemaRack       = "drydock/Rack/v1"
	SchemaBootAction = "drydock/BootAction/v1"
)

// notUsed are the Drydock schemas a site's set carries that mean nothing to
// one box on one LAN: accepted, and said so.
var notUsed = map[string]string{
	"drydock/Region/v1":          "site-wide repositories, keys and tags are not applied by this box",
	"drydock/Network/v1":         "this box serves its own LAN; node networks are the OS's business",
	"drydock/NetworkLink/v1":     "link bonding and trunking are the OS's business",
	"drydock/HardwareProfile/v1": "device aliases and hugepages are not applied by this box",
}

// Design is a parsed site design.
type Design struct {
	Nodes       []Node
	Profiles    map[string]Profile
	Racks       map[string]Rack
	BootActions []BootAction
	// Problems are every finding, errors and notes alike, in document order.
	Problems []Problem
}

// Ref names a document: its schema and metadata.name.
type Ref struct{ Schema, Name string }

func (r Ref) String() string { return r.Schema + " " + r.Name }

// Level says how much a problem matters.
type Level string

// Problem levels, as Drydock's validation messages name them.
const (
	Error   Level = "Error"
	Warning Level = "Warning"
	Info    Level = "Info"
)

// Problem is one finding about a design: which document, which field, and
// what is wrong (or worth knowing).
type Problem struct {
	Level    Level
	Document Ref    // zero for the design as a whole
	Field    string // data.oob.type; empty for the whole document
	Message  string
}

func (p Problem) String() string {
	where := p.Document.String()
	if p.Field != "" {
		where += " " + p.Field
	}
	if p.Document == (Ref{}) {
		where = "design"
	}
	return fmt.Sprintf("%s: %s: %s", p.Level, where, p.Message)
}

// Valid says whether the design has no errors (warnings and notes allowed).
func (d *Design) Valid() bool {
	return !slices.ContainsFunc(d.Problems, func(p Problem) bool { return p.Level == Error })
}

// Errors are the problems that make the design unusable.
func (d *Design) Errors() []Problem {
	var out []Problem
	for _, p := range d.Problems {
		if p.Level == Error {
			out = append(out, p)
		}
	}
	return out
}

func (d *Design) add(l Level, doc Ref, field, format string, args ...any) {
	d.Problems = append(d.Problems, Problem{Level: l, Document: doc, Field: field, Message: fmt.Sprintf(format, args...)})
}

// OOB says how a node's BMC is reached, as Drydock designs say it.
type OOB struct {
	Type       string `yaml:"type"` // redfish | ipmi | manual | libvirt
	Network    string `yaml:"network"`
	Account    string `yaml:"account"`
	Credential string `yaml:"credential"`
	// Extra keys are allowed by Drydock's schema (driver parameters).
	Extra map[string]any `yaml:",inline"`
}

// Platform is what a node boots.
type Platform struct {
	Image        string         `yaml:"image"`
	Kernel       string         `yaml:"kernel"`
	KernelParams map[string]any `yaml:"kernel_params"`
}

// Metadata is a node's tags, labels (owner_data), rack and boot MAC.
type Metadata struct {
	Tags      []string          `yaml:"tags"`
	OwnerData map[string]string `yaml:"owner_data"`
	Rack      string            `yaml:"rack"`
	BootMAC   string            `yaml:"boot_mac"`
}

// Address is a node's address on one of the site's networks.
type Address struct {
	Network string `yaml:"network"`
	Address string `yaml:"address"`
}

// hostFields are what a HostProfile and a BaremetalNode share; a node
// inherits what it leaves out from its profile chain.
type hostFields struct {
	HostProfile     string         `yaml:"host_profile"`
	HardwareProfile string         `yaml:"hardware_profile"`
	PrimaryNetwork  string         `yaml:"primary_network"`
	OOB             *OOB           `yaml:"oob"`
	Platform        *Platform      `yaml:"platform"`
	Metadata        *Metadata      `yaml:"metadata"`
	Interfaces      map[string]any `yaml:"interfaces"`
	Storage         map[string]any `yaml:"storage"`
}

// Profile is a drydock/HostProfile/v1.
type Profile struct {
	Name string
	hostFields
}

// Node is a drydock/BaremetalNode/v1, with what its profiles give it
// already merged in.
type Node struct {
	Name       string
	Addressing []Address
	hostFields
}

// Tags are the node's metadata tags.
func (n Node) Tags() []string {
	if n.Metadata == nil {
		return nil
	}
	return n.Metadata.Tags
}

// Labels are the node's owner_data, which Drydock's node_labels filter on.
func (n Node) Labels() map[string]string {
	if n.Metadata == nil {
		return nil
	}
	return n.Metadata.OwnerData
}

// Rack is the rack the node's metadata names.
func (n Node) Rack() string {
	if n.Metadata == nil {
		return ""
	}
	return n.Metadata.Rack
}

// AddressOn is the node's address on network, "" if it has none there.
func (n Node) AddressOn(network string) string {
	for _, a := range n.Addressing {
		if a.Network == network {
			return a.Address
		}
	}
	return ""
}

// Rack is a drydock/Rack/v1: its name and labels matter here.
type Rack struct {
	Name   string
	Labels map[string]string
}

// envelope is one document as it sits in the YAML stream.
type envelope struct {
	Schema   string `yaml:"schema"`
	Metadata struct {
		Schema string            `yaml:"schema"`
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data yaml.Node `yaml:"data"`
}

// MaxSize is the largest design Parse reads.
const MaxSize = 16 << 20

// Parse reads a design's YAML documents and checks them; profiles are the
// boot profiles this box has (a HostProfile's platform.image may name
// one). The problems found are in the design; err is set only when the
// text is not YAML documents at all.
func Parse(text []byte, profiles []string) (*Design, error) {
	if len(text) > MaxSize {
		return nil, fmt.Errorf("the design is %d bytes; the limit is %d", len(text), MaxSize)
	}
	d := &Design{Profiles: map[string]Profile{}, Racks: map[string]Rack{}}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	var rawNodes []Node
	for i := 1; ; i++ {
		var env envelope
		err := dec.Decode(&env)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if env.Schema == "" && env.Metadata.Name == "" {
			continue // an empty document (a trailing ---)
		}
		ref := Ref{Schema: env.Schema, Name: env.Metadata.Name}
		if ref.Name == "" {
			d.add(Error, ref, "metadata.name", "document %d has no name", i)
			continue
		}
		if n, ok := d.readDocument(ref, env); ok {
			rawNodes = append(rawNodes, n)
		}
	}
	d.resolveNodes(rawNodes)
	d.checkNodes(profiles)
	d.checkBootActions()
	if len(d.Nodes) == 0 {
		d.add(Warning, Ref{}, "", "the design has no %s documents: there is nothing to deploy", SchemaNode)
	}
	return d, nil
}

// readDocument decodes one document by its schema; a node comes back to be
// resolved once every profile is known.
func (d *Design) readDocument(ref Ref, env envelope) (Node, bool) {
	switch ref.Schema {
	case SchemaNode:
		var n struct {
			hostFields `yaml:",inline"`
			Addressing []Address `yaml:"addressing"`
		}
		if d.decode(ref, &env.Data, &n) {
			return Node{Name: ref.Name, Addressing: n.Addressing, hostFields: n.hostFields}, true
		}
	case SchemaProfile:
		var p hostFields
		if d.decode(ref, &env.Data, &p) {
			if _, dup := d.Profiles[ref.Name]; dup {
				d.add(Error, ref, "metadata.name", "a second host profile named %q", ref.Name)
			}
			d.Profiles[ref.Name] = Profile{Name: ref.Name, hostFields: p}
		}
	case SchemaRack:
		var r map[string]any
		if d.decode(ref, &env.Data, &r) {
			d.Racks[ref.Name] = Rack{Name: ref.Name, Labels: env.Metadata.Labels}
		}
	case SchemaBootAction:
		var b bootActionDoc
		if d.decode(ref, &env.Data, &b) {
			d.BootActions = append(d.BootActions, BootAction{Name: ref.Name, Signaling: b.Signaling == nil || *b.Signaling,
				Assets: b.Assets, Filter: b.NodeFilter})
		}
	default:
		if why, ok := notUsed[ref.Schema]; ok {
			d.add(Info, ref, "", "accepted, not used by this box: %s", why)
		} else if strings.HasPrefix(ref.Schema, "drydock/") {
			d.add(Warning, ref, "schema", "a Drydock schema this box does not know; the document is ignored")
		} else {
			d.add(Info, ref, "", "not a Drydock document; ignored")
		}
	}
	return Node{}, false
}

// decode reads a document's data into v; a field Drydock's schema does
// not have is an error that names it, and the rest is still read, so that
// the document's other problems are found too.
func (d *Design) decode(ref Ref, data *yaml.Node, v any) bool {
	if data.Kind == 0 {
		d.add(Error, ref, "data", "the document has no data")
		return false
	}
	if err := data.Decode(v); err != nil {
		d.add(Error, ref, "data", "%s", yamlProblem(err))
		return false
	}
	text, err := yaml.Marshal(data)
	if err != nil {
		return true
	}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	var strict = reflect.New(reflect.TypeOf(v).Elem()).Interface()
	if err := dec.Decode(strict); err != nil {
		d.add(Error, ref, "data", "%s", yamlProblem(err))
	}
	return true
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type`)

// yamlProblem says what a YAML decoding error means without the Go types
// and the line numbers of a re-encoded document.
func yamlProblem(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	var out []string
	for _, e := range te.Errors {
		if m := unknownField.FindStringSubmatch(e); m != nil {
			out = append(out, fmt.Sprintf("unknown field %q (Drydock's schema has no such field here)", m[1]))
			continue
		}
		_, msg, found := strings.Cut(e, ": ")
		if !found {
			msg = e
		}
		out = append(out, msg)
	}
	return strings.Join(out, "; ")
}

// resolveNodes merges each node's profile chain into it: a field the node
// leaves out comes from its profile, then that profile's parent.
func (d *Design) resolveNodes(nodes []Node) {
	seen := map[string]bool{}
	for _, n := range nodes {
		ref := Ref{SchemaNode, n.Name}
		if seen[n.Name] {
			d.add(Error, ref, "metadata.name", "a second node named %q", n.Name)
			continue
		}
		seen[n.Name] = true
		chain := map[string]bool{}
		for parent := n.HostProfile; parent != ""; {
			if chain[parent] {
				d.add(Error, ref, "data.host_profile", "host profile %q inherits from itself", parent)
				break
			}
			chain[parent] = true
			p, ok := d.Profiles[parent]
			if !ok {
				d.add(Error, ref, "data.host_profile", "no %s named %q", SchemaProfile, parent)
				break
			}
			n.hostFields = inherit(n.hostFields, p.hostFields)
			parent = p.HostProfile
		}
		d.Nodes = append(d.Nodes, n)
	}
}

// inherit fills what child leaves out from parent.
func inherit(child, parent hostFields) hostFields {
	out := child
	out.HostProfile = parent.HostProfile
	if out.HardwareProfile == "" {
		out.HardwareProfile = parent.HardwareProfile
	}
	if out.PrimaryNetwork == "" {
		out.PrimaryNetwork = parent.PrimaryNetwork
	}
	if out.OOB == nil {
		out.OOB = parent.OOB
	}
	if out.Platform == nil {
		out.Platform = parent.Platform
	} else if parent.Platform != nil {
		p := *out.Platform
		if p.Image == "" {
			p.Image = parent.Platform.Image
		}
		if p.Kernel == "" {
			p.Kernel = parent.Platform.Kernel
		}
		out.Platform = &p
	}
	if out.Metadata == nil {
		out.Metadata = parent.Metadata
	} else if parent.Metadata != nil {
		m := *out.Metadata
		m.Tags = append(slices.Clone(parent.Metadata.Tags), m.Tags...)
		if m.OwnerData == nil {
			m.OwnerData = parent.Metadata.OwnerData
		}
		out.Metadata = &m
	}
	return out
}

// checkNodes checks what this box needs of each node: a BMC it can reach
// or a boot MAC, a rack that exists, a profile it has.
func (d *Design) checkNodes(profiles []string) {
	for _, n := range d.Nodes {
		ref := Ref{SchemaNode, n.Name}
		if !domain.ValidHostname(n.Name) {
			d.add(Error, ref, "metadata.name", "%q is not a valid hostname (letters, digits and '-'): the node's name is its hostname", n.Name)
		}
		if m := n.Metadata; m != nil && m.BootMAC != "" {
			if _, err := domain.ParseMAC(m.BootMAC); err != nil {
				d.add(Error, ref, "data.metadata.boot_mac", "%v", err)
			}
		}
		if r := n.Rack(); r != "" && len(d.Racks) > 0 {
			if _, ok := d.Racks[r]; !ok {
				d.add(Warning, ref, "data.metadata.rack", "no %s named %q; the rack is listed by name only", SchemaRack, r)
			}
		}
		if n.Platform != nil && n.Platform.Image != "" && !slices.Contains(profiles, n.Platform.Image) {
			d.add(Warning, ref, "data.platform.image", "this box has no boot profile %q; the node boots the default profile", n.Platform.Image)
		}
		d.checkOOB(ref, n)
	}
}

func (d *Design) checkOOB(ref Ref, n Node) {
	hasMAC := n.Metadata != nil && n.Metadata.BootMAC != ""
	if n.OOB == nil || n.OOB.Type == "manual" || n.OOB.Type == "" {
		if !hasMAC {
			d.add(Warning, ref, "data.metadata.boot_mac", "no BMC and no boot MAC: the node is known by its name only until it netboots, and is then a discovered machine")
		}
		return
	}
	switch n.OOB.Type {
	case "redfish", "ipmi":
	case "libvirt":
		d.add(Warning, ref, "data.oob.type", "libvirt is not a BMC this box can drive; power the node on by hand")
		return
	default:
		d.add(Error, ref, "data.oob.type", "unknown oob type %q (redfish, ipmi, manual or libvirt)", n.OOB.Type)
		return
	}
	if n.OOB.Type == "ipmi" {
		d.add(Warning, ref, "data.oob.type", "this box drives BMCs over Redfish: the BMC at the oob address is reached with Redfish")
	}
	if n.OOB.Account == "" {
		d.add(Warning, ref, "data.oob.account", "no BMC account: the BMC cannot be logged in to")
	}
	if ep, ok := n.OOB.Extra["endpoint"]; ok {
		s, isString := ep.(string)
		if u, err := url.Parse(s); !isString || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			d.add(Error, ref, "data.oob.endpoint", "%v is not a Redfish URL such as https://10.88.1.10", ep)
		}
		return
	}
	if n.OOB.Network == "" {
		d.add(Error, ref, "data.oob.network", "the oob network is missing: it says which address is the BMC's")
		return
	}
	addr := n.AddressOn(n.OOB.Network)
	if addr == "" {
		d.add(Error, ref, "data.addressing", "no address on the oob network %q: the BMC cannot be reached", n.OOB.Network)
		return
	}
	if _, err := netip.ParseAddr(addr); err != nil {
		d.add(Error, ref, "data.addressing", "the oob address %q is not an IP address", addr)
	}
}

// BMCEndpoint is the Redfish endpoint of a node's BMC, "" for a node
// without one this box drives: oob.endpoint when the design gives it (a
// Slipway extension: a BMC on another port, or plain HTTP), else https://
// and the node's address on the oob network.
func (n Node) BMCEndpoint() string {
	if n.OOB == nil || (n.OOB.Type != "redfish" && n.OOB.Type != "ipmi") {
		return ""
	}
	if ep, ok := n.OOB.Extra["endpoint"].(string); ok {
		return strings.TrimSuffix(ep, "/")
	}
	addr, err := netip.ParseAddr(n.AddressOn(n.OOB.Network))
	if err != nil {
		return ""
	}
	host := addr.String()
	if addr.Is6() {
		host = "[" + host + "]"
	}
	return "https://" + host
}

// BMCVerifiesTLS says whether the BMC's certificate is checked: only when
// the design asks (oob.verify_tls: true), as BMCs mostly carry
// self-signed certificates.
func (n Node) BMCVerifiesTLS() bool {
	if n.OOB == nil {
		return false
	}
	v, _ := n.OOB.Extra["verify_tls"].(bool)
	return v
}

// Listed is the node as the inventory lists it: its name is its machine
// id and hostname, its rack its rack, its boot MAC its MAC, and its
// platform image its boot profile when this box has one by that name.
func (n Node) Listed(profiles []string) domain.Listed {
	l := domain.Listed{ID: n.Name, Source: domain.SourceDesign, MachineInfo: domain.MachineInfo{Hostname: n.Name, RackID: n.Rack(), RackName: n.Rack(),
		TrayType: "compute", BMCEndpoint: n.BMCEndpoint()}}
	if n.Metadata != nil && n.Metadata.BootMAC != "" {
		if mac, err := domain.ParseMAC(n.Metadata.BootMAC); err == nil {
			l.MACs = []domain.MAC{mac}
		}
	}
	if n.Platform != nil && slices.Contains(profiles, n.Platform.Image) {
		l.Profile = n.Platform.Image
	}
	return l
}

// Node is the node named name.
func (d *Design) Node(name string) (Node, bool) {
	i := slices.IndexFunc(d.Nodes, func(n Node) bool { return n.Name == name })
	if i < 0 {
		return Node{}, false
	}
	return d.Nodes[i], true
}
