package design

import (
	"fmt"
	"slices"
)

// Set types of a node filter.
const (
	Union        = "union"
	Intersection = "intersection"
)

// NodeFilter selects nodes, as Drydock's node_filter: the filter sets'
// selections combined by FilterSetType; a nil filter selects every node.
type NodeFilter struct {
	FilterSetType string      `yaml:"filter_set_type" json:"filter_set_type"`
	FilterSet     []FilterSet `yaml:"filter_set" json:"filter_set"`
}

// FilterSet selects nodes by name, tag, label (owner_data), rack name or
// rack label. Within a criterion a node matches any value; FilterType
// combines the criteria given. A set with no criteria selects every node.
type FilterSet struct {
	FilterType string            `yaml:"filter_type" json:"filter_type"`
	NodeNames  []string          `yaml:"node_names" json:"node_names"`
	NodeTags   []string          `yaml:"node_tags" json:"node_tags"`
	NodeLabels map[string]string `yaml:"node_labels" json:"node_labels"`
	RackNames  []string          `yaml:"rack_names" json:"rack_names"`
	RackLabels map[string]string `yaml:"rack_labels" json:"rack_labels"`
}

// CheckFilter returns the problems of a node filter (an unknown set type).
func CheckFilter(f *NodeFilter) error {
	if f == nil {
		return nil
	}
	if f.FilterSetType != Union && f.FilterSetType != Intersection {
		return fmt.Errorf("filter_set_type %q: use union or intersection", f.FilterSetType)
	}
	for i, s := range f.FilterSet {
		if s.FilterType != Union && s.FilterType != Intersection {
			return fmt.Errorf("filter_set[%d].filter_type %q: use union or intersection", i, s.FilterType)
		}
	}
	return nil
}

func (d *Design) checkFilter(ref Ref, at string, f *NodeFilter) {
	if err := CheckFilter(f); err != nil {
		d.add(Error, ref, at, "%v", err)
		return
	}
	for i, s := range f.FilterSet {
		for _, name := range s.NodeNames {
			if _, ok := d.Node(name); !ok {
				d.add(Warning, ref, fmt.Sprintf("%s.filter_set[%d].node_names", at, i), "no node named %q", name)
			}
		}
	}
}

// Select is the names of the nodes f selects, in design order.
func (d *Design) Select(f *NodeFilter) ([]string, error) {
	if err := CheckFilter(f); err != nil {
		return nil, err
	}
	var out []string
	for _, n := range d.Nodes {
		if f == nil || d.filterMatches(f, n) {
			out = append(out, n.Name)
		}
	}
	return out, nil
}

func (d *Design) filterMatches(f *NodeFilter, n Node) bool {
	if len(f.FilterSet) == 0 {
		return true
	}
	for _, s := range f.FilterSet {
		m := d.setMatches(s, n)
		if m && f.FilterSetType == Union {
			return true
		}
		if !m && f.FilterSetType == Intersection {
			return false
		}
	}
	return f.FilterSetType == Intersection
}

func (d *Design) setMatches(s FilterSet, n Node) bool {
	var results []bool
	if len(s.NodeNames) > 0 {
		results = append(results, slices.Contains(s.NodeNames, n.Name))
	}
	if len(s.NodeTags) > 0 {
		results = append(results, slices.ContainsFunc(n.Tags(), func(t string) bool { return slices.Contains(s.NodeTags, t) }))
	}
	if len(s.NodeLabels) > 0 {
		results = append(results, anyLabel(s.NodeLabels, n.Labels()))
	}
	if len(s.RackNames) > 0 {
		results = append(results, slices.Contains(s.RackNames, n.Rack()))
	}
	if len(s.RackLabels) > 0 {
		results = append(results, anyLabel(s.RackLabels, d.Racks[n.Rack()].Labels))
	}
	if len(results) == 0 {
		return true
	}
	if s.FilterType == Union {
		return slices.Contains(results, true)
	}
	return !slices.Contains(results, false)
}

// anyLabel: one of want's labels has its value in have.
func anyLabel(want, have map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; ok && got == v {
			return true
		}
	}
	return false
}

// ActionsFor are the boot actions a node receives: those whose filter
// selects it.
func (d *Design) ActionsFor(node string) []BootAction {
	n, ok := d.Node(node)
	if !ok {
		return nil
	}
	var out []BootAction
	for _, ba := range d.BootActions {
		if ba.Filter == nil || (CheckFilter(ba.Filter) == nil && d.filterMatches(ba.Filter, n)) {
			out = append(out, ba)
		}
	}
	return out
}
