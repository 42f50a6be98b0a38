package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBridgeWithOnlyURLAndSiteTakesDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal + "bridge: {url: 'mqtt://central.example:1883', site: rack-a}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.BridgeOn() || cfg.BridgeClientID() != "slipway-rack-a" || cfg.BridgeTopicPrefix() != "sites/rack-a/" {
		t.Errorf("on %v, client id %q, prefix %q", cfg.BridgeOn(), cfg.BridgeClientID(), cfg.BridgeTopicPrefix())
	}
	if len(cfg.Bridge.Topics) != 2 || cfg.Bridge.Topics[0].Filter != "NICO/v1/#" || cfg.Bridge.Topics[0].QoSOr() != 1 {
		t.Errorf("topics %+v", cfg.Bridge.Topics)
	}
	if cfg.BridgeTLS() {
		t.Error("mqtt:// taken for TLS")
	}
	if tls, _ := Parse([]byte(minimal + "bridge: {url: 'wss://central.example/mqtt', site: rack-a}\n")); !tls.BridgeTLS() {
		t.Error("wss:// not taken for TLS")
	}
	if off, _ := Parse([]byte(minimal)); off.BridgeOn() {
		t.Error("the bridge is on by default")
	}
}

func TestBridgeMistakesNameTheField(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"no site", "bridge: {url: 'mqtt://c:1883'}\n", []string{`bridge.site (line 7): "" is not a site name`}},
		{"site with a wildcard", "bridge: {url: 'mqtt://c:1883', site: 'a/+'}\n", []string{`bridge.site (line 7): "a/+" is not a site name`}},
		{"unknown scheme", "bridge: {url: 'amqp://c', site: a}\n", []string{`bridge.url (line 7): scheme "amqp" is not one the bridge speaks`, "use mqtt://, mqtts://, ws:// or wss://"}},
		{"no host", "bridge: {url: 'mqtt://', site: a}\n", []string{`names no host`}},
		{"credentials in the URL", "bridge: {url: 'mqtt://u:p@c', site: a}\n", []string{"bridge.url (line 7): holds credentials"}},
		{"username alone", "bridge: {url: 'mqtt://c', site: a, username: u}\n", []string{"bridge.password_file", "username and password_file go together"}},
		{"key without certificate", "bridge: {url: 'mqtts://c', site: a, key_file: /k}\n", []string{"bridge.cert_file", "cert_file and key_file go together"}},
		{"CA on a plain URL", "bridge: {url: 'mqtt://c', site: a, ca_file: /ca.pem}\n", []string{`is not TLS, but a certificate or CA is set`, "use mqtts:// or wss://"}},
		{"prefix without a slash", "bridge: {url: 'mqtt://c', site: a, topic_prefix: 'sites/{site}'}\n", []string{`bridge.topic_prefix (line 7): "sites/{site}" is not a topic prefix`}},
		{"no topics", "bridge: {url: 'mqtt://c', site: a, topics: []}\n", []string{"bridge.topics (line 7): no topics"}},
		{"bad filter, QoS and retain", "bridge:\n  url: 'mqtt://c'\n  site: a\n  topics:\n    - {filter: 'NICO/#/x', qos: 3, retain: sometimes}\n",
			[]string{`bridge.topics[0].filter (line 11): "NICO/#/x" is not an MQTT topic filter`, "bridge.topics[0].qos (line 11): 3 is not an MQTT QoS", `bridge.topics[0].retain (line 11): "sometimes"`}},
		{"commands as nobody", "bridge: {url: 'mqtt://c', site: a, commands: {enabled: true, role: root}}\n", []string{`bridge.commands.role (line 7): "root"`}},
		{"commands without the site in the topics", "bridge: {url: 'mqtt://c', site: a, topic_prefix: '', commands: {enabled: true}}\n", []string{`bridge.commands.enabled (line 7): commands need the site in bridge.topic_prefix ("" has no {site})`}},
		{"backlog too small", "bridge: {url: 'mqtt://c', site: a, max_backlog: 10}\n", []string{"bridge.max_backlog (line 7): 10 is out of range"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal + tt.yaml))
			if err == nil {
				t.Fatal("Parse accepted an invalid bridge")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
		})
	}
}

func TestBridgeFilesAreChecked(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600)
	cfg, err := Parse([]byte(minimal + "bridge:\n  url: 'mqtts://c'\n  site: a\n  username: u\n  password_file: " + filepath.Join(dir, "missing") +
		"\n  ca_file: " + notPEM + "\n  cert_file: " + notPEM + "\n  key_file: " + notPEM + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.CheckFiles()
	for _, want := range []string{"bridge.password_file (line 11): " + filepath.Join(dir, "missing") + " cannot be read",
		"bridge.ca_file (line 12): " + notPEM + " holds no PEM certificate", "bridge.cert_file (line 13): the certificate and key cannot be used"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
