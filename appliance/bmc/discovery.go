package bmc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/slipway/slipway/appliance/domain"
)

// DiscoveryConfig says how BMCs that take a DHCP lease are found.
type DiscoveryConfig struct {
	// Credentials are tried in order on a BMC found; discovery is off
	// without any, since a BMC nobody can log in to is no use.
	Credentials []Credentials
	// Endpoints are URL templates tried in order, {ip} standing for the
	// leased address (default https://{ip}, then http://{ip}).
	Endpoints []string
	// Insecure registers discovered BMCs without TLS verification: a BMC
	// fresh from the factory has a self-signed certificate.
	Insecure bool
	// Retries are the waits before probing an address again: a BMC's
	// DHCP client runs long before its web server answers.
	Retries []time.Duration
	// ProbeTimeout bounds one probe request (default 3 s).
	ProbeTimeout time.Duration
	// Forget, if set, is told the MAC of a BMC found: the NIC's DHCP lease
	// made it look like a machine, which it is not.
	Forget func(ctx context.Context, mac domain.MAC, cause string)
}

// Credentials are a username and password discovery may try.
type Credentials struct {
	Name     string // its name in the config, for logs
	Username string
	Password string
}

func (d DiscoveryConfig) withDefaults() DiscoveryConfig {
	if len(d.Endpoints) == 0 {
		d.Endpoints = []string{"https://{ip}", "http://{ip}"}
	}
	if d.Retries == nil {
		d.Retries = []time.Duration{20 * time.Second, time.Minute, 3 * time.Minute, 10 * time.Minute}
	}
	if d.ProbeTimeout <= 0 {
		d.ProbeTimeout = 3 * time.Second
	}
	return d
}

// discoverer probes leased addresses for Redfish, a few at a time.
type discoverer struct {
	cfg   DiscoveryConfig
	probe *http.Client // no TLS verification, and no credentials ever sent
	queue chan probeJob

	mu      sync.Mutex
	probing map[netip.Addr]domain.MAC // a probe series is under way
	settled map[netip.Addr]domain.MAC // the series ended: renewals are not news
}

type probeJob struct {
	mac     domain.MAC
	ip      netip.Addr
	attempt int
}

const discoveryWorkers = 4

func newDiscoverer(cfg DiscoveryConfig) *discoverer {
	cfg = cfg.withDefaults()
	return &discoverer{
		cfg:   cfg,
		probe: newHTTPClients(cfg.ProbeTimeout, 1, nil).insecure,
		queue: make(chan probeJob, 1024), probing: map[netip.Addr]domain.MAC{}, settled: map[netip.Addr]domain.MAC{},
	}
}

// LeaseBound is told of every DHCP lease bound; it never blocks. An
// address is probed once per MAC that takes it, and again on the retry
// schedule until something answers Redfish there.
func (m *Manager) LeaseBound(mac domain.MAC, ip netip.Addr) {
	d := m.discovery
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.probing[ip] == mac || d.settled[ip] == mac {
		return
	}
	d.probing[ip] = mac
	delete(d.settled, ip)
	select {
	case d.queue <- probeJob{mac: mac, ip: ip}:
	default:
		delete(d.probing, ip) // a storm of leases: the next renewal tries again
	}
}

// runDiscovery probes queued addresses until ctx ends.
func (m *Manager) runDiscovery(ctx context.Context) {
	d := m.discovery
	var wg sync.WaitGroup
	for range discoveryWorkers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-d.queue:
					m.probe(ctx, j)
				}
			}
		})
	}
	wg.Wait()
	d.probe.CloseIdleConnections()
}

func (m *Manager) probe(ctx context.Context, j probeJob) {
	d := m.discovery
	endpoint, found := d.findRedfish(ctx, j.ip)
	if !found && j.attempt < len(d.cfg.Retries) && ctx.Err() == nil {
		next := j
		next.attempt++
		time.AfterFunc(d.cfg.Retries[j.attempt], func() {
			select {
			case d.queue <- next:
			default:
				d.settle(j.ip, j.mac)
			}
		})
		return
	}
	d.settle(j.ip, j.mac)
	if found {
		m.adopt(ctx, j, endpoint)
	}
}

func (d *discoverer) settle(ip netip.Addr, mac domain.MAC) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.probing, ip)
	d.settled[ip] = mac
}

// findRedfish asks each endpoint template for the Redfish service root,
// without credentials.
func (d *discoverer) findRedfish(ctx context.Context, ip netip.Addr) (string, bool) {
	host := ip.String()
	if ip.Is6() {
		host = "[" + host + "]"
	}
	for _, tmpl := range d.cfg.Endpoints {
		endpoint := strings.ReplaceAll(tmpl, "{ip}", host)
		if d.isRedfish(ctx, endpoint) {
			return endpoint, true
		}
	}
	return "", false
}

func (d *discoverer) isRedfish(ctx context.Context, endpoint string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/redfish/v1/", nil)
	if err != nil {
		return false
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.probe.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var root struct {
		RedfishVersion string
		ODataID        string `json:"@odata.id"`
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(body, &root) != nil {
		return false
	}
	return root.RedfishVersion != "" || strings.HasPrefix(root.ODataID, "/redfish/v1")
}

// adopt registers a BMC found with the first configured credentials it
// accepts, or the first ones if it accepts none (its status then says so:
// discovery never guesses beyond the configured list).
func (m *Manager) adopt(ctx context.Context, j probeJob, endpoint string) {
	d := m.discovery
	if _, err := m.target(IDFor(endpoint)); err == nil {
		return // registered already, maybe by hand: that registration stands
	}
	creds := d.cfg.Credentials[0]
	for _, c := range d.cfg.Credentials {
		conn, _, err := m.clients.connect(ctx, endpoint, c.Username, c.Password, d.cfg.Insecure)
		if err == nil {
			conn.Logout()
			creds = c
			break
		}
		if !authRefused(err) {
			creds = c // it cannot tell (TLS, timeouts): the poller will say why
			break
		}
		m.log.Info("BMC discovery: credentials refused", "endpoint", endpoint, "credentials", c.Name)
	}
	_, err := m.Register(ctx, Registration{Endpoint: endpoint, Username: creds.Username, Password: creds.Password,
		Insecure: d.cfg.Insecure, Source: domain.SourceDiscovered})
	if err != nil {
		m.log.Error("BMC discovery: cannot register", "endpoint", endpoint, "error", err)
		return
	}
	m.log.Info("BMC discovered", "endpoint", endpoint, "mac", j.mac, "credentials", creds.Name)
	if d.cfg.Forget != nil {
		d.cfg.Forget(ctx, j.mac, fmt.Sprintf("its NIC is BMC %s, not a host", endpointHost(endpoint)))
	}
}

func endpointHost(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil {
		return u.Host
	}
	return endpoint
}
