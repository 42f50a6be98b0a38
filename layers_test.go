package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// module is this module's import path.
const module = "github.com/slipway/slipway"

// A package's layer: imports may point to a lower rank, never to a higher
// one, and a door reaches the store only through the model.
const (
	rankStore = iota
	rankModel
	rankDoor
	rankTop // main, wiring, and the testbed that main's demo runs
)

// layerOf places a package of this module: its rank and, for a door, which
// door it belongs to (doors never import each other).
func layerOf(pkg string) (rank int, door string) {
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
	first, _, _ := strings.Cut(rel, "/")
	switch first {
	case "store":
		return rankStore, ""
	case "appliance", "image":
		return rankModel, ""
	case "netboot", "web", "broker":
		return rankDoor, first
	default: // "" (main), wiring, testbed
		return rankTop, ""
	}
}

// violations lists the imports, of the graph given as package → imports,
// that break the layers.
func violations(graph map[string][]string) []string {
	var out []string
	for pkg, imports := range graph {
		from, fromDoor := layerOf(pkg)
		for _, imp := range imports {
			if imp != module && !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to, toDoor := layerOf(imp)
			switch {
			case to > from:
				out = append(out, fmt.Sprintf("%s imports %s: an import that points up", pkg, imp))
			case from == rankDoor && to == rankStore:
				out = append(out, fmt.Sprintf("%s imports %s: a door skips past the model into the store", pkg, imp))
			case from == rankDoor && to == rankDoor && fromDoor != toDoor:
				out = append(out, fmt.Sprintf("%s imports %s: doors meet in the model, never directly", pkg, imp))
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestLayers reads the module's import graph (production code, not tests)
// and fails on any import against the direction
// main → doors (netboot, web, broker) → appliance (the model) → store.
func TestLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	graph := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
			Module     *struct{ Path string }
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Module != nil && p.Module.Path == module {
			graph[p.ImportPath] = p.Imports
		}
	}
	if len(graph) < 20 {
		t.Fatalf("read only %d packages of the module: %v", len(graph), graph)
	}
	for _, v := range violations(graph) {
		t.Error(v)
	}
}

// The rule itself catches what it is for.
func TestLayerViolations(t *testing.T) {
	p := func(rel string) string { return module + "/" + rel }
	tests := []struct {
		name    string
		from    string
		imports []string
		want    string
	}{
		{"door over model", p("web"), []string{p("appliance/domain")}, ""},
		{"model over store", p("appliance/domain"), []string{p("store")}, ""},
		{"wiring over everything", p("wiring"), []string{p("web"), p("store"), p("broker/relay")}, ""},
		{"a door's own sub-package", p("broker/relay"), []string{p("broker")}, ""},
		{"door into store", p("web"), []string{p("store")}, "skips past the model"},
		{"model up into a door", p("appliance/config"), []string{p("broker")}, "points up"},
		{"model up into wiring", p("appliance/bmc"), []string{p("wiring")}, "points up"},
		{"store up into the model", p("store"), []string{p("appliance/domain")}, "points up"},
		{"door into another door", p("netboot/dhcp"), []string{p("web")}, "doors meet in the model"},
		{"door into the testbed", p("web"), []string{p("testbed/testkit")}, "points up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(violations(map[string][]string{tt.from: tt.imports}), "\n")
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Fatalf("violations %q, want %q", got, tt.want)
			}
		})
	}
}
