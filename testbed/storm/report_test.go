package storm

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSpread(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := spread(ds)
	if got.P50 != 51*time.Millisecond || got.P95 != 96*time.Millisecond || got.P99 != 100*time.Millisecond || got.Max != 100*time.Millisecond {
		t.Errorf("spread of 1..100 ms = %+v", got)
	}
	if (spread(nil) != Spread{}) {
		t.Error("spread of nothing is not zero")
	}
}

func TestReportCountsFailuresAndDuplicates(t *testing.T) {
	s := &storm{}
	outcomes := []outcome{
		{MAC: "02:00:00:00:00:01", IP: "10.88.1.1", Ready: 3 * time.Second, PowerOn: time.Second},
		{MAC: "02:00:00:00:00:02", IP: "10.88.1.1", Ready: 5 * time.Second}, // the same address: a duplicate
		{MAC: "02:00:00:00:00:03", IP: "10.88.1.3", Failed: stageLoader, Err: "TFTP ipxe.efi: timeout waiting for block 17", DHCPResent: 2},
		{MAC: "02:00:00:00:00:04", IP: "10.88.1.4", Failed: stageLoader, Err: "TFTP ipxe.efi: timeout waiting for block 400"},
	}
	r := s.report(outcomes, []sample{{At: 0}, {At: time.Second, ServerCores: 1.5, ServerRSSMiB: 100}, {At: 2 * time.Second, ServerCores: 0.5, ServerRSSMiB: 80}})
	if r.Ready != 2 || r.Failed != 2 || r.DuplicateAddresses != 1 || r.DHCPRetransmissions != 2 || r.Wall != 5*time.Second {
		t.Errorf("report %+v", r)
	}
	if n := r.Errors["loader over TFTP: TFTP ipxe.efi: timeout waiting for block …"]; n != 2 {
		t.Errorf("like failures not counted together: %v", r.Errors)
	}
	if r.ServerCPUSeconds != 2 || r.ServerPeakCores != 1.5 || r.ServerPeakRSSMiB != 100 || r.ServerEndRSSMiB != 80 {
		t.Errorf("server figures %+v", r)
	}
	if table := r.Table(); !strings.Contains(table, "4 machines: 2 ready, 2 failed") || !strings.Contains(table, "2 × loader over TFTP") {
		t.Errorf("table:\n%s", table)
	}
	if svg := r.svg(); !strings.HasPrefix(svg, "<svg") || strings.Count(svg, "<polyline") != 9 {
		t.Errorf("svg has %d lines", strings.Count(svg, "<polyline"))
	}
	r.Console = &ConsoleReport{EventsHandled: 28, AllReadyShownAfter: 300 * time.Millisecond, CPUSeconds: 6.25}
	if table := r.Table(); !strings.Contains(table, "28 live events handled") || !strings.Contains(table, "ready 0.3 s after the last one was") ||
		!strings.Contains(table, "Chromium used 6.2 CPU-seconds") {
		t.Errorf("table with the console:\n%s", table)
	}
}

func TestConfigIsChecked(t *testing.T) {
	for _, c := range []Config{
		{Server: "10.88.0.1", Machines: 1},
		{Interface: "eth0", Server: "slipway", Machines: 1},
		{Interface: "eth0", Server: "10.88.0.1"},
		{Interface: "eth0", Server: "10.88.0.1", Machines: 1, Loss: 1},
	} {
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if c, err := (Config{Interface: "eth0", Server: "10.88.0.1", Machines: 1}).withDefaults(); err != nil || c.TFTPPort != 69 || c.Deadline != 10*time.Minute {
		t.Errorf("defaults %+v, %v", c, err)
	}
}

func TestPerSecond(t *testing.T) {
	series := []sample{{At: 0, MQTT: 0}, {At: time.Second, MQTT: 500}, {At: 3 * time.Second, MQTT: 1500}, {At: 4 * time.Second, MQTT: 1500},
		{At: 4*time.Second + 100*time.Millisecond, MQTT: 1900}} // a last sample a moment later: not 4,000/s
	got := perSecond(series, func(x sample) int64 { return x.MQTT })
	want := []float64{0, 500, 500, 0, 0}
	if !slices.Equal(got, want) {
		t.Fatalf("perSecond = %v, want %v", got, want)
	}
}
