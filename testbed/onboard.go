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
	q := "?mac=" + url.QueryEscape(mac)
	if userData, err = httpGet(ctx, server+"/cloud-init/user-data"+q); err != nil {
		return "", fmt.Errorf("cloud-init user-data: %w", err)
	}
	if _, err = httpGet(ctx, server+"/cloud-init/meta-data"+q); err != nil {
		return "", fmt.Errorf("cloud-init meta-data: %w", err)
	}
	for _, stage := range domain.Stages {
		for _, phase := range []domain.Phase{domain.PhaseStarted, domain.PhaseDone} {
			if err := Heartbeat(ctx, server, mac, string(stage), string(phase), ""); err != nil {
				return userData, err
			}
		}
		select {
		case <-ctx.Done():
			return userData, ctx.Err()
		case <-time.After(stageDelay):
		}
	}
	return userData, nil
}

// Heartbeat posts one onboarding heartbeat; a non-200 answer is an error
// that quotes the server's reason.
func Heartbeat(ctx context.Context, server, mac, stage, phase, detail string) error {
	body, _ := json.Marshal(map[string]string{"mac": mac, "stage": stage, "phase": phase, "detail": detail})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server+"/heartbeat", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("heartbeat %s/%s: %w", stage, phase, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("heartbeat %s/%s: %s: %s", stage, phase, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// serverOf is the scheme and host of a URL: where the rest of the API is.
func serverOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
