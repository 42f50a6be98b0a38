package testbed

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/slipway/slipway/netboot/cloudinit"
)

// BootActionsRun says what a simulated node did with its boot actions.
type BootActionsRun struct {
	Files     map[string]string // unpacked path → content
	Succeeded []string          // action names reported success
	Failed    []string          // action names reported failure
}

// RunBootActions plays what Slipway's boot action script does on a
// deploying node, from the user-data it was served: it fetches its files
// and units with its key, "starts" each action's units (a unit whose
// ExecStart is /bin/false fails, as it would), and reports each signaling
// action's status the way baclient does (POST …/{id}/, trailing slash).
// A user-data without boot actions is a run with nothing in it.
func RunBootActions(ctx context.Context, userData string) (BootActionsRun, error) {
	run := BootActionsRun{Files: map[string]string{}}
	var doc struct {
		WriteFiles []struct {
			Path    string `yaml:"path"`
			Content string `yaml:"content"`
		} `yaml:"write_files"`
	}
	if err := yaml.Unmarshal([]byte(userData), &doc); err != nil {
		return run, fmt.Errorf("user-data: %w", err)
	}
	var key, manifestJSON string
	for _, f := range doc.WriteFiles {
		switch f.Path {
		case cloudinit.KeyFile:
			key = strings.TrimSpace(f.Content)
		case cloudinit.ManifestFile:
			manifestJSON = f.Content
		}
	}
	if manifestJSON == "" {
		return run, nil
	}
	var m cloudinit.Manifest
	if err := json.Unmarshal([]byte(manifestJSON), &m); err != nil {
		return run, fmt.Errorf("%s: %w", cloudinit.ManifestFile, err)
	}
	base := strings.TrimSuffix(m.ReportURL, "/")
	for _, kind := range []string{"files", "units"} {
		if err := fetchBootData(ctx, base+"/nodes/"+m.Node+"/"+kind, key, run.Files); err != nil {
			return run, err
		}
	}
	for _, a := range m.Actions {
		ok := true
		for _, unit := range a.Units {
			for p, content := range run.Files {
				if path.Base(p) == unit && strings.Contains(content, "ExecStart=/bin/false") {
					ok = false
				}
			}
		}
		if !a.Signaling {
			continue
		}
		status, msg := "success", "boot action "+a.Name+": units started"
		if !ok {
			status, msg = "failure", "boot action "+a.Name+": a unit failed"
			run.Failed = append(run.Failed, a.Name)
		} else {
			run.Succeeded = append(run.Succeeded, a.Name)
		}
		body, _ := json.Marshal(map[string]any{"status": status, "details": []map[string]any{{"message": msg, "error": !ok}}})
		if err := postReport(ctx, base+"/"+a.ID+"/", key, body); err != nil {
			return run, err
		}
	}
	return run, nil
}

func fetchBootData(ctx context.Context, url, key string, into map[string]string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Bootaction-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	gz, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("GET %s: %w", url, err)
		}
		content, _ := io.ReadAll(tr)
		into[hdr.Name] = string(content)
	}
}

func postReport(ctx context.Context, url, key string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Bootaction-Key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusConflict {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, msg)
	}
	return nil
}
