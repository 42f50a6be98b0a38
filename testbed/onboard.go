package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slipway/slipway/appliance/domain"
)

// Onboard plays the installer a netbooted node runs: it fetches its
// cloud-init data from server (http://host:port) and reports every stage
// (domain.Stages) started and done by heartbeat, pausing stageDelay between stages.
func Onboard(ctx context.Context, server, mac string, stageDelay time.Duration) (userData string, err error) {
	web := Web{Client: http.DefaultClient}
	if userData, err = web.CloudInit(ctx, server, mac); err != nil {
		return "", err
	}
	return userData, web.Heartbeats(ctx, server, mac, stageDelay)
}

// CloudInit fetches a machine's cloud-init user-data and meta-data, as
// cloud-init's NoCloud datasource does, and returns the user-data.
func (w Web) CloudInit(ctx context.Context, server, mac string) (userData string, err error) {
	q := "?mac=" + url.QueryEscape(mac)
	if userData, err = w.Get(ctx, server+"/cloud-init/user-data"+q); err != nil {
		return "", fmt.Errorf("cloud-init user-data: %w", err)
	}
	if _, err = w.Get(ctx, server+"/cloud-init/meta-data"+q); err != nil {
		return "", fmt.Errorf("cloud-init meta-data: %w", err)
	}
	return userData, nil
}

// Heartbeats reports every stage (domain.Stages) started and done, pausing
// stageDelay between stages.
func (w Web) Heartbeats(ctx context.Context, server, mac string, stageDelay time.Duration) error {
	for _, stage := range domain.Stages {
		for _, phase := range []domain.Phase{domain.PhaseStarted, domain.PhaseDone} {
			if err := w.Heartbeat(ctx, server, mac, string(stage), string(phase), ""); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(stageDelay):
		}
	}
	return nil
}

// Heartbeat posts one onboarding heartbeat; a non-200 answer is an error
// that quotes the server's reason.
func Heartbeat(ctx context.Context, server, mac, stage, phase, detail string) error {
	return Web{Client: http.DefaultClient}.Heartbeat(ctx, server, mac, stage, phase, detail)
}

// Heartbeat posts one onboarding heartbeat from w's machine.
func (w Web) Heartbeat(ctx context.Context, server, mac, stage, phase, detail string) error {
	body, _ := json.Marshal(map[string]string{"mac": mac, "stage": stage, "phase": phase, "detail": detail})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server+"/heartbeat", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.Client.Do(req)
	if err != nil {
		return fmt.Errorf("heartbeat %s/%s: %w", stage, phase, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("heartbeat %s/%s: %s: %s", stage, phase, resp.Status, strings.TrimSpace(string(msg)))
	}
	_, _ = io.Copy(io.Discard, resp.Body) // so that the connection is kept
	return nil
}

// ServerOf is the scheme and host of a URL: where the rest of the API is.
func ServerOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
