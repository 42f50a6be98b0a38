package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// redacted stands where a secret was.
const redacted = "(redacted)"

// Redacted is the effective configuration as YAML, in the file's own
// shape (durations as "10s", fields in their order), with every secret
// (the users' and MQTT users' password hashes) replaced: what an admin may
// see of the whole site's settings. Password files are named, not read.
func (c *Config) Redacted() (string, error) {
	b, err := yaml.Marshal(c.redactedNode())
	if err != nil {
		return "", fmt.Errorf("encode the configuration: %w", err)
	}
	return string(b), nil
}

// redactedNode is the effective configuration as a YAML mapping, every
// secret replaced.
func (c *Config) redactedNode() *yaml.Node {
	out := *c
	out.Users = append([]User(nil), c.Users...)
	for i := range out.Users {
		out.Users[i].PasswordHash = redacted
	}
	out.MQTT.Users = append([]MQTTUser(nil), c.MQTT.Users...)
	for i := range out.MQTT.Users {
		out.MQTT.Users[i].PasswordHash = redacted
	}
	return yamlNode(reflect.ValueOf(out))
}

var durationType = reflect.TypeOf(time.Duration(0))

// yamlNode encodes v as the config file writes it: yaml tags, durations
// as strings, nil pointers left out.
func yamlNode(v reflect.Value) *yaml.Node {
	if v.Type() == durationType {
		return &yaml.Node{Kind: yaml.ScalarNode, Value: v.Interface().(time.Duration).String()}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
		}
		return yamlNode(v.Elem())
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" || (v.Field(i).Kind() == reflect.Pointer && v.Field(i).IsNil()) {
				continue
			}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name}, yamlNode(v.Field(i)))
		}
		return n
	case reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: fmt.Sprint(k)}, yamlNode(v.MapIndex(k)))
		}
		return n
	case reflect.Slice, reflect.Array:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for i := range v.Len() {
			n.Content = append(n.Content, yamlNode(v.Index(i)))
			if v.Index(i).Kind() == reflect.Struct {
				n.Style = 0
			}
		}
		return n
	}
	var n yaml.Node
	if err := n.Encode(v.Interface()); err != nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Value: fmt.Sprint(v.Interface())}
	}
	return &n
}

// Value is the effective value of one field by its dotted path
// ("image.state_device"), as the file would write it (a section comes out
// as YAML): what a start-up script needs of the file, secrets redacted.
func (c *Config) Value(path string) (string, error) {
	node := c.redactedNode()
	for _, key := range strings.Split(path, ".") {
		next := mappingValue(node, key)
		if next == nil {
			return "", fmt.Errorf("%s: no such field", path)
		}
		node = next
	}
	if node.Kind == yaml.ScalarNode {
		return node.Value, nil
	}
	b, err := yaml.Marshal(node)
	return strings.TrimSuffix(string(b), "\n"), err
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
