package bmcemu

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

//go:embed mockups
var mockupFiles embed.FS

// MockupNames lists the embedded DMTF mockups.
func MockupNames() []string { return []string{"public-rackmount1", "public-tower"} }

// DefaultMockup is what an Emulator serves when its Config names none.
const DefaultMockup = "public-rackmount1"

// Mockup is one parsed mockup: every resource by its URI. It is read-only
// once loaded, so any number of emulators share one.
type Mockup struct {
	Name string
	docs map[string][]byte // "/redfish/v1/Systems/X" → the resource's JSON
	xml  map[string][]byte // "$metadata" documents
}

// LoadMockup parses an embedded mockup.
func LoadMockup(name string) (*Mockup, error) {
	root := path.Join("mockups", name)
	if _, err := fs.Stat(mockupFiles, root); err != nil {
		return nil, fmt.Errorf("mockup %q: not embedded (have %s)", name, strings.Join(MockupNames(), ", "))
	}
	m := &Mockup{Name: name, docs: map[string][]byte{}, xml: map[string][]byte{}}
	err := fs.WalkDir(mockupFiles, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := mockupFiles.ReadFile(p)
		if err != nil {
			return err
		}
		uri := strings.TrimPrefix(p, root)
		switch {
		case strings.HasSuffix(uri, "/index.json"):
			if !json.Valid(b) {
				return fmt.Errorf("%s is not JSON", p)
			}
			m.docs[strings.TrimSuffix(uri, "/index.json")] = b
		case strings.HasSuffix(uri, "/index.xml"):
			m.xml[strings.TrimSuffix(uri, "/index.xml")] = b
		default:
			m.docs[uri] = b
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mockup %q: %w", name, err)
	}
	return m, nil
}

// members lists the @odata.id of a collection's members.
func (m *Mockup) members(collection string) []string {
	var c struct {
		Members []struct {
			ID string `json:"@odata.id"`
		}
	}
	if json.Unmarshal(m.docs[collection], &c) != nil {
		return nil
	}
	ids := make([]string, 0, len(c.Members))
	for _, mem := range c.Members {
		ids = append(ids, mem.ID)
	}
	return ids
}

// Systems lists the URIs of the mockup's computer systems.
func (m *Mockup) Systems() []string { return m.members("/redfish/v1/Systems") }

// object parses one resource into a map to modify.
func (m *Mockup) object(uri string) map[string]any {
	var o map[string]any
	if json.Unmarshal(m.docs[uri], &o) != nil {
		return map[string]any{}
	}
	return o
}
