// Package nicoschema checks messages against NICo's published JSON Schema
// for ManagedHostStateChangeMessage (managed-host-state-change.schema.json,
// embedded as NICo ships it), so that tests of every part that carries
// states can hold them to the spec rather than to our own reading of it.
package nicoschema

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed managed-host-state-change.schema.json
var schemaJSON []byte

// compiled is built once; the schema is immutable, so sharing it is safe.
var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) { return compile("") })

const schemaURL = "managed-host-state-change.schema.json"

// compile compiles the whole schema, or one of its $defs.
func compile(def string) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	// The schema is generated from Rust types: its integer formats are
	// Rust's, which the JSON Schema standard does not define.
	for name, r := range map[string][2]float64{
		"uint32": {0, math.MaxUint32}, "uint": {0, math.MaxUint64}, "uint64": {0, math.MaxUint64}, "int64": {math.MinInt64, math.MaxInt64},
	} {
		c.RegisterFormat(&jsonschema.Format{Name: name, Validate: integerIn(r[0], r[1])})
	}
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, err
	}
	if def != "" {
		return c.Compile(schemaURL + "#/$defs/" + def)
	}
	return c.Compile(schemaURL)
}

func integerIn(lo, hi float64) func(any) error {
	return func(v any) error {
		n, ok := v.(json.Number)
		if !ok {
			return nil // formats apply to numbers only
		}
		f, err := n.Float64()
		if err != nil || f != math.Trunc(f) || f < lo || f > hi {
			return fmt.Errorf("%s is not an integer in [%g, %g]", n, lo, hi)
		}
		return nil
	}
}

// Validate checks one ManagedHostStateChangeMessage payload.
func Validate(payload []byte) error {
	s, err := compiled()
	if err != nil {
		return fmt.Errorf("compile the NICo schema: %w", err)
	}
	return validate(s, payload)
}

// ValidateDef checks a document against one of the schema's $defs, e.g.
// BmcFirmwareUpgradeSubstate.
func ValidateDef(def string, payload []byte) error {
	s, err := compile(def)
	if err != nil {
		return fmt.Errorf("compile the NICo schema's %s: %w", def, err)
	}
	return validate(s, payload)
}

func validate(s *jsonschema.Schema, payload []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.Validate(doc)
}
