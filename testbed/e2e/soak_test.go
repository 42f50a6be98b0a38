//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed"
)

// soakSample is the process's footprint at one moment.
type soakSample struct {
	at                    time.Duration
	rssMiB, fds, routines int
}

// Churn for SLIPWAY_SOAK (a duration: make soak runs 30m) on `slipway
// demo`: its machines are provisioned over and over through their emulated
// BMCs (one-time PXE, power cycle, DHCP, TFTP, HTTP, cloud-init, every
// heartbeat), the API is read, the console's event stream is opened and
// dropped, MQTT subscribers come and go. Every 30 s the process's resident
// memory, open files and goroutines are sampled; after a warm-up tenth,
// the last third must not have grown past the first by more than noise.
// The series is written as CSV (SLIPWAY_SOAK_CSV).
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("SLIPWAY_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set SLIPWAY_SOAK=30m (make soak) to run the soak")
	}
	requireCommands(t, map[string]string{"mosquitto_sub": "mosquitto-clients"})
	demo := startDemo(t, 16)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	churn := func(every time.Duration, fn func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				fn(i)
				select {
				case <-ctx.Done():
				case <-time.After(every):
				}
			}
		}()
	}
	var provisions, apiCalls, subscribers, streams atomic.Int64
	client := &http.Client{Timeout: 10 * time.Second}
	call := func(ctx context.Context, method, path string) (int, []byte) {
		req, _ := http.NewRequestWithContext(ctx, method, demo.base+path, nil)
		req.SetBasicAuth("admin", "slipway-demo")
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	churn(700*time.Millisecond, func(int) {
		_, body := call(ctx, "GET", "/api/v1/machines?limit=100")
		var page struct {
			Machines []struct {
				ID    string `json:"machine_id"`
				State struct {
					State string `json:"state"`
				} `json:"managed_host_state"`
			} `json:"machines"`
		}
		if json.Unmarshal(body, &page) != nil {
			return
		}
		rand.Shuffle(len(page.Machines), func(i, j int) { page.Machines[i], page.Machines[j] = page.Machines[j], page.Machines[i] })
		for _, m := range page.Machines {
			if m.State.State == "ready" {
				if code, _ := call(ctx, "POST", "/api/v1/machines/"+m.ID+"/provision"); code < 300 {
					provisions.Add(1)
				}
				return
			}
		}
	})
	churn(200*time.Millisecond, func(i int) {
		path := []string{"/api/v1/machines?limit=50", "/api/v1/overview", "/api/v1/leases", "/clients?limit=20", "/metrics", "/api/v1/bmcs"}[i%6]
		if code, _ := call(ctx, "GET", path); code == 200 {
			apiCalls.Add(1)
		}
	})
	churn(2*time.Second, func(int) {
		sctx, scancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer scancel()
		call(sctx, "GET", "/api/v1/events")
		streams.Add(1)
	})
	churn(time.Second, func(int) {
		testbed.Host{}.Run(ctx, "mosquitto_sub", "-h", "127.0.0.1", "-p", strconv.Itoa(demo.mqttPort), "-t", "NICO/#", "-t", "slipway/#", "-C", "50", "-W", "3")
		subscribers.Add(1)
	})

	var samples []soakSample
	start := time.Now()
	sample := func() {
		samples = append(samples, footprint(demo.pid, demo.base, time.Since(start)))
		s := samples[len(samples)-1]
		t.Logf("%6s  resident %3d MiB  open files %4d  goroutines %5d", s.at.Round(time.Second), s.rssMiB, s.fds, s.routines)
	}
	sample()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(30 * time.Second):
			sample()
		}
	}
	wg.Wait()
	t.Logf("%s of churn: %d machines provisioned (netbooted and onboarded through their BMCs), %d API reads, %d event streams, %d MQTT subscribers",
		d, provisions.Load(), apiCalls.Load(), streams.Load(), subscribers.Load())
	if provisions.Load() == 0 {
		t.Error("no machine was provisioned: the soak churned nothing")
	}
	writeSoakCSV(t, samples)
	checkFlat(t, samples)
}

var goroutinesMetric = regexp.MustCompile(`(?m)^go_goroutines (\d+)`)

// footprint reads the process's resident memory, open files, and its
// goroutines from /metrics.
func footprint(pid int, base string, at time.Duration) soakSample {
	s := soakSample{at: at}
	if kb, err := testbed.ResidentKiB(pid); err == nil {
		s.rssMiB = kb >> 10
	}
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.fds = len(fds)
	}
	if resp, err := http.Get(base + "/metrics"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := goroutinesMetric.FindStringSubmatch(string(body)); m != nil {
			s.routines, _ = strconv.Atoi(m[1])
		}
	}
	return s
}

// checkFlat compares the last samples with the first ones after a warm-up
// tenth: growth past noise is a leak.
func checkFlat(t *testing.T, samples []soakSample) {
	t.Helper()
	if len(samples) < 6 {
		t.Fatalf("only %d samples: run the soak for 3 minutes at least", len(samples))
	}
	warm := samples[max(1, len(samples)/10):]
	first, last := peak(warm[:len(warm)/3]), peak(warm[len(warm)*2/3:])
	t.Logf("after warm-up: first third peaks at %d MiB, %d files, %d goroutines; last third at %d MiB, %d files, %d goroutines",
		first.rssMiB, first.fds, first.routines, last.rssMiB, last.fds, last.routines)
	if last.rssMiB > first.rssMiB*5/4+8 {
		t.Errorf("resident memory grew from %d to %d MiB", first.rssMiB, last.rssMiB)
	}
	if last.fds > first.fds+32 {
		t.Errorf("open files grew from %d to %d", first.fds, last.fds)
	}
	if last.routines > first.routines+64 {
		t.Errorf("goroutines grew from %d to %d", first.routines, last.routines)
	}
}

func peak(samples []soakSample) soakSample {
	var p soakSample
	for _, s := range samples {
		p.rssMiB, p.fds, p.routines = max(p.rssMiB, s.rssMiB), max(p.fds, s.fds), max(p.routines, s.routines)
	}
	return p
}

func writeSoakCSV(t *testing.T, samples []soakSample) {
	t.Helper()
	path := os.Getenv("SLIPWAY_SOAK_CSV")
	if path == "" {
		path = filepath.Join(os.TempDir(), "slipway-soak.csv")
	}
	var b strings.Builder
	b.WriteString("seconds,resident_mib,open_files,goroutines\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "%d,%d,%d,%d\n", int(s.at.Seconds()), s.rssMiB, s.fds, s.routines)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("series written to %s", path)
}
