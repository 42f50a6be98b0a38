package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed defaults.yaml
var defaultsYAML []byte

// Load reads the YAML file at path over the embedded defaults and validates
// the result. The error, when there is one, is an Errors value listing every
// problem, or a plain error when the file cannot be read at all.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data)
}

// maxFileSize bounds what Parse reads: a configuration is a few kilobytes,
// or 2–3 MB for a site that lists 10,000 machines with their racks and
// BMCs, and the YAML scanner slows badly on huge malformed input.
const maxFileSize = 8 << 20

// Parse is Load for a configuration already in memory.
func Parse(data []byte) (*Config, error) {
	if len(data) > maxFileSize {
		return nil, Errors{{Path: "(file)", Problem: fmt.Sprintf("is %d bytes, more than a configuration can be (%d)", len(data), maxFileSize), Fix: "check that the right file was named"}}
	}
	cfg, err := Defaults()
	if err != nil {
		return nil, err
	}
	lines, err := decodeOver(cfg, data)
	var found Errors
	if err != nil && !errors.As(err, &found) {
		return nil, err // not YAML at all: nothing more can be said
	}
	cfg.lines = lines
	if found.duplicateKeys() {
		// The mapping with a key written twice was not read at all:
		// checking what it held would report its settings missing.
		return nil, found
	}
	// Every problem in one pass: the fields that could not be read keep
	// their defaults and are not checked again.
	for _, e := range cfg.fieldErrors(cfg.Validate()) {
		if !found.mention(e.Path) {
			found = append(found, e)
		}
	}
	if len(found) > 0 {
		return nil, found
	}
	return cfg, nil
}

// fieldErrors gives err's field errors their lines.
func (c *Config) fieldErrors(err error) Errors {
	var es Errors
	if err == nil || !errors.As(err, &es) {
		return nil
	}
	for i := range es {
		if es[i].Line == 0 {
			es[i].Line = c.lines.lineOf(es[i].Path)
		}
	}
	return es
}

// Defaults returns the embedded defaults, not yet validated (they lack the
// LAN, which only the operator knows).
func Defaults() (*Config, error) {
	cfg := &Config{}
	if _, err := decodeOver(cfg, defaultsYAML); err != nil {
		return nil, fmt.Errorf("embedded defaults are broken (a bug): %w", err)
	}
	return cfg, nil
}

// decodeOver decodes data onto cfg, keeping what data does not mention.
// It returns where each field stands in data, for error messages.
func decodeOver(cfg *Config, data []byte) (fieldLines, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return fieldLines{}, nil // an empty file means "all defaults"
		}
		return nil, Errors{{Path: "(file)", Problem: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if len(doc.Content) == 0 {
		return fieldLines{}, nil
	}
	w := &walker{lines: fieldLines{}, budget: max(minNodes, len(data))}
	w.walk(doc.Content[0], reflect.TypeOf(*cfg), "")
	errs := w.errs
	// Decoding goes on past a value of the wrong type, so that every one
	// is reported.
	if err := doc.Content[0].Decode(cfg); err != nil {
		errs = append(errs, w.lines.explain(err)...)
	}
	if len(errs) > 0 {
		return w.lines, errs
	}
	return w.lines, nil
}

// fieldLines maps a field's path to the line it stands on.
type fieldLines map[string]int

func (fl fieldLines) lineOf(path string) int {
	for p := path; p != ""; {
		if l, ok := fl[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

var yamlLineError = regexp.MustCompile(`^line (\d+): (.*)$`)

// explain turns the decoder's "line N: cannot unmarshal ..." messages into
// FieldErrors that name the field.
func (fl fieldLines) explain(err error) Errors {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return Errors{{Path: "(file)", Problem: err.Error()}}
	}
	byLine := map[int]string{}
	for p, l := range fl {
		if cur, ok := byLine[l]; !ok || len(p) > len(cur) {
			byLine[l] = p
		}
	}
	var out Errors
	for _, msg := range te.Errors {
		m := yamlLineError.FindStringSubmatch(msg)
		if m == nil {
			out = append(out, FieldError{Path: "(file)", Problem: msg})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		if key := duplicateKey.FindStringSubmatch(m[2]); key != nil {
			out = append(out, FieldError{Path: key[1], Line: line, Problem: m[2],
				Fix: "write each key once: merge the two into one mapping"})
			continue
		}
		out = append(out, FieldError{Path: byLine[line], Line: line, Problem: plainTypeError(m[2])})
	}
	return out
}

// duplicateKey is the decoder's message for a key written twice in one
// mapping, which stops it reading that mapping at all.
var duplicateKey = regexp.MustCompile(`^mapping key "([^"]*)" already defined at line \d+$`)

var unmarshalWords = regexp.MustCompile("cannot unmarshal !!(\\w+) (?:`(.*)` )?into (.*)")

func plainTypeError(msg string) string {
	m := unmarshalWords.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	want := m[3]
	switch {
	case want == "time.Duration":
		want = "a duration such as 30s, 5m or 1h"
	case strings.HasPrefix(want, "[]"):
		want = "a list"
	case strings.HasPrefix(want, "map["), strings.HasPrefix(want, "config."):
		want = "a mapping of keys to values"
	case want == "int":
		want = "a whole number"
	case want == "bool":
		want = "true or false"
	}
	if m[2] == "" {
		return fmt.Sprintf("is a %s, expected %s", yamlKind(m[1]), want)
	}
	return fmt.Sprintf("%q is a %s, expected %s", m[2], yamlKind(m[1]), want)
}

func yamlKind(tag string) string {
	switch tag {
	case "str":
		return "string"
	case "seq":
		return "list"
	case "map":
		return "mapping"
	default:
		return tag
	}
}

// walker checks a YAML tree against the Go types it will decode into, before
// decoding: unknown keys become errors with a suggestion, and every field's
// line is remembered.
type walker struct {
	lines   fieldLines
	errs    Errors
	visited int
	// budget bounds the walk, so that aliases that refer to themselves or
	// expand exponentially ("billion laughs") are refused rather than
	// followed: a document without aliases has fewer nodes than bytes,
	// so a large site's long list of machines stays within it.
	budget int
}

// minNodes is the least budget a walk has, however short the document.
const minNodes = 100_000

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if w.visited++; w.visited > w.budget || strings.Count(path, ".") > 32 {
		if w.visited < w.budget+2 || len(w.errs) == 0 {
			w.errs = append(w.errs, FieldError{Path: path, Line: n.Line, Problem: "the document is nested too deeply or its aliases expand without end", Fix: "write the values out instead of using YAML aliases"})
		}
		w.visited = w.budget + 2
		return
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if path != "" {
		if _, seen := w.lines[path]; !seen {
			w.lines[path] = n.Line
		}
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		w.walkStruct(n, t, path)
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i]
			w.lines[join(path, key.Value)] = key.Line
			w.walk(n.Content[i+1], t.Elem(), join(path, key.Value))
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			w.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

func (w *walker) walkStruct(n *yaml.Node, t reflect.Type, path string) {
	fields := yamlFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i]
		if key.Value == "<<" { // YAML merge key: its fields are checked where the anchor is
			continue
		}
		p := join(path, key.Value)
		f, ok := fields[key.Value]
		if !ok {
			w.errs = append(w.errs, unknownField(p, key, fields))
			continue
		}
		w.lines[p] = key.Line
		w.walk(n.Content[i+1], f.Type, p)
	}
}

func unknownField(path string, key *yaml.Node, fields map[string]reflect.StructField) FieldError {
	known := make([]string, 0, len(fields))
	for name := range fields {
		known = append(known, name)
	}
	sort.Strings(known)
	fe := FieldError{Path: path, Line: key.Line, Problem: "unknown field"}
	if s := closest(key.Value, known); s != "" {
		fe.Fix = fmt.Sprintf("did you mean %q?", s)
	} else {
		fe.Fix = "known fields here: " + strings.Join(known, ", ")
	}
	return fe
}

// yamlFields maps each yaml key of struct type t to its field.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		out[name] = f
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// duplicateKeys says whether a key was written twice in one mapping.
func (es Errors) duplicateKeys() bool {
	for _, e := range es {
		if duplicateKey.MatchString(e.Problem) {
			return true
		}
	}
	return false
}
