package config

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// Bridge feeds this box's events to an upstream MQTT broker that many
// boxes share (docs/bridge.md). It is off while URL is empty.
type Bridge struct {
	// URL is the upstream broker: mqtt://host:1883, mqtts://host:8883,
	// ws://host/mqtt or wss://host/mqtt.
	URL string `yaml:"url"`
	// Site names this box upstream; it goes into the topics (TopicPrefix).
	Site string `yaml:"site"`
	// ClientID is the MQTT client id upstream (default slipway-<site>).
	ClientID string `yaml:"client_id"`
	// Username and PasswordFile log in with a password; CertFile and
	// KeyFile with a client certificate (mqtts:// or wss:// only).
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	// CAFile is the PEM bundle the upstream's certificate is checked
	// against (default: the system's roots).
	CAFile string `yaml:"ca_file"`
	// TopicPrefix goes before every topic sent up; {site} stands for
	// Site. "" sends the topics as they are here.
	TopicPrefix string `yaml:"topic_prefix"`
	// Topics are the trees sent up, each with its QoS and retain flag.
	Topics []BridgeTopic `yaml:"topics"`
	// MaxBacklog is how many events may wait for the uplink; past it the
	// oldest are dropped (and counted, and logged).
	MaxBacklog int64 `yaml:"max_backlog"`
	// Commands lets the upstream act on this site (docs/bridge.md).
	Commands BridgeCommands `yaml:"commands"`
}

// BridgeCommands are the commands the upstream may send down.
type BridgeCommands struct {
	Enabled bool `yaml:"enabled"`
	// Role is what the upstream may do, as a user of that role may
	// through the API: operator powers, provisions and resets heartbeats.
	Role string `yaml:"role"`
}

// BridgeTopic is one tree of topics the bridge sends up.
type BridgeTopic struct {
	Filter string `yaml:"filter"`        // an MQTT topic filter: NICO/v1/#
	QoS    *int   `yaml:"qos,omitempty"` // 0, 1 (default) or 2
	// Retain is as-published (default: the flag the event has here),
	// always or never.
	Retain string `yaml:"retain,omitempty"`
}

// Retain settings of a BridgeTopic.
const (
	RetainAsPublished = "as-published"
	RetainAlways      = "always"
	RetainNever       = "never"
)

// BridgeOn says whether the bridge runs.
func (c *Config) BridgeOn() bool { return c.Bridge.URL != "" }

// BridgeClientID is bridge.client_id, or slipway-<site> when unset.
func (c *Config) BridgeClientID() string {
	if c.Bridge.ClientID != "" {
		return c.Bridge.ClientID
	}
	return "slipway-" + c.Bridge.Site
}

// BridgeTopicPrefix is bridge.topic_prefix with the site in it.
func (c *Config) BridgeTopicPrefix() string {
	return strings.ReplaceAll(c.Bridge.TopicPrefix, "{site}", c.Bridge.Site)
}

// BridgeTLS says whether bridge.url speaks TLS (mqtts://, wss://).
func (c *Config) BridgeTLS() bool {
	u, err := url.Parse(c.Bridge.URL)
	return err == nil && bridgeSchemes[u.Scheme]
}

// QoSOr is the tree's QoS, 1 when unset.
func (t BridgeTopic) QoSOr() byte {
	if t.QoS == nil {
		return 1
	}
	return byte(*t.QoS)
}

// A site goes into topic names: no wildcards, no separators.
var siteName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// bridgeSchemes are the upstream URL schemes, and whether each is TLS.
var bridgeSchemes = map[string]bool{"mqtt": false, "mqtts": true, "ws": false, "wss": true}

func (c *Config) validateBridge(v *fieldErrors) {
	b := c.Bridge
	if b.URL == "" {
		return
	}
	tls := c.validateBridgeURL(v)
	if !siteName.MatchString(b.Site) {
		v.add("bridge.site", fmt.Sprintf("%q is not a site name", b.Site), "name this box's site with letters, digits, '.', '_' or '-' (up to 64), e.g. rack-a or fra1-r12: it goes into the topics upstream")
	}
	if id := c.BridgeClientID(); len(id) > 256 || strings.ContainsAny(id, "\x00+#/") {
		v.add("bridge.client_id", fmt.Sprintf("%q is not usable as an MQTT client id", id), "use up to 256 letters, digits, '.', '_' or '-'; every box needs its own")
	}
	if (b.Username == "") != (b.PasswordFile == "") {
		v.add("bridge.password_file", "username and password_file go together", "set both to log in with a password, or neither")
	}
	if (b.CertFile == "") != (b.KeyFile == "") {
		v.add("bridge.cert_file", "cert_file and key_file go together", "name the client certificate and its key, or neither")
	}
	if !tls && (b.CertFile != "" || b.CAFile != "") {
		v.add("bridge.url", fmt.Sprintf("%q is not TLS, but a certificate or CA is set", b.URL), "use mqtts:// or wss:// to connect with TLS")
	}
	if p := b.TopicPrefix; p != "" && (strings.ContainsAny(p, "+#\x00") || !strings.HasSuffix(p, "/") || strings.HasPrefix(p, "/")) {
		v.add("bridge.topic_prefix", fmt.Sprintf("%q is not a topic prefix", p), `use levels ending in '/', without wildcards, e.g. "sites/{site}/", or "" for none`)
	}
	if len(b.Topics) == 0 {
		v.add("bridge.topics", "no topics: the bridge would send nothing", "list the trees to send up, e.g. - filter: NICO/v1/#")
	}
	for i, t := range b.Topics {
		at := fmt.Sprintf("bridge.topics[%d]", i)
		if !validTopicFilter(t.Filter) {
			v.add(at+".filter", fmt.Sprintf("%q is not an MQTT topic filter", t.Filter), "use levels separated by '/', '+' for one level, '#' last for the rest")
		}
		if t.QoS != nil && (*t.QoS < 0 || *t.QoS > 2) {
			v.add(at+".qos", fmt.Sprintf("%d is not an MQTT QoS", *t.QoS), "use 0, 1 or 2 (1: every event confirmed upstream before it is let go)")
		}
		if t.Retain != "" {
			oneOf(v, at+".retain", t.Retain, RetainAsPublished, RetainAlways, RetainNever)
		}
	}
	if b.Commands.Enabled {
		oneOf(v, "bridge.commands.role", b.Commands.Role, "viewer", "operator", "admin")
		if !strings.Contains(b.TopicPrefix, "{site}") {
			v.add("bridge.commands.enabled", fmt.Sprintf("commands need the site in bridge.topic_prefix (%q has no {site})", b.TopicPrefix),
				"keep the default sites/{site}/: the command topics are under the prefix, and without the site every box would run every site's commands")
		}
	}
	if n := b.MaxBacklog; n < 1000 || n > 1_000_000 {
		v.add("bridge.max_backlog", fmt.Sprintf("%d is out of range", n), "use 1000 to 1000000 (events kept for the uplink while it is down)")
	}
}

// validateBridgeURL checks bridge.url and says whether it speaks TLS.
func (c *Config) validateBridgeURL(v *fieldErrors) bool {
	u, err := url.Parse(c.Bridge.URL)
	if err != nil {
		v.add("bridge.url", fmt.Sprintf("%q is not a URL", c.Bridge.URL), "write it like mqtts://broker.example:8883")
		return false
	}
	tls, known := bridgeSchemes[u.Scheme]
	switch {
	case !known:
		v.add("bridge.url", fmt.Sprintf("scheme %q is not one the bridge speaks", u.Scheme), "use mqtt://, mqtts://, ws:// or wss://")
	case u.Hostname() == "":
		v.add("bridge.url", fmt.Sprintf("%q names no host", c.Bridge.URL), "write it like mqtts://broker.example:8883")
	case u.User != nil:
		v.add("bridge.url", "holds credentials", "give them as bridge.username and bridge.password_file, so that the URL can be shown")
	}
	return tls
}

// checkBridgeFiles checks the files bridge names (CheckFiles).
func (c *Config) checkBridgeFiles(v *fieldErrors) {
	b := c.Bridge
	if b.URL == "" {
		return
	}
	readable(v, "bridge.password_file", b.PasswordFile, "put the upstream broker's password in it, readable by root only (chmod 0600)")
	if b.CAFile != "" {
		if pem, err := os.ReadFile(b.CAFile); err != nil {
			v.add("bridge.ca_file", fmt.Sprintf("%s cannot be read: %v", b.CAFile, unwrapPath(err)), "name the PEM bundle of the CA that signs the upstream broker's certificate")
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			v.add("bridge.ca_file", fmt.Sprintf("%s holds no PEM certificate", b.CAFile), "name the PEM bundle of the CA that signs the upstream broker's certificate")
		}
	}
	keyPair(v, "bridge.cert_file", b.CertFile, b.KeyFile, "name the client certificate (PEM) the upstream broker accepts", "name the PEM key of that certificate, readable by root only")
}
