package storm

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Report is what a storm found.
type Report struct {
	Machines, Ready, Failed int
	// Wall is from the first power-on to the last machine ready.
	Wall time.Duration
	// ToReady is power-on → ready over the machines that got there.
	ToReady Spread
	Stages  []StageSpread
	// Errors counts failures by stage and message (addresses and MACs
	// taken out, so that like failures add up).
	Errors map[string]int
	// DuplicateAddresses counts machines given an address another
	// machine was given: it must be 0.
	DuplicateAddresses int
	// DHCPRetransmissions are DHCP messages sent again for want of an
	// answer (lost each way, or not answered in time).
	DHCPRetransmissions int
	// BootRetries are network boots started again after a failed loader fetch.
	BootRetries int
	Bytes       int64
	// The server: CPU over the storm (seconds, and the busiest second in
	// cores) and its resident memory at its peak and at the end.
	ServerCPUSeconds, ServerPeakCores, ServerPeakRSSMiB, ServerEndRSSMiB float64
	// The storm's own CPU (seconds): the machines it plays share the box.
	StormCPUSeconds float64
	// What the MQTT subscriber and the console's event stream were sent,
	// and how often the stream said it had dropped some.
	MQTTMessages, StreamEvents, StreamOverflows int64
	// Console is what the console showed in a browser; nil: no browser.
	Console *ConsoleReport `json:",omitempty"`

	series   []sample
	outcomes []outcome
}

// Spread is a distribution's percentiles.
type Spread struct{ P50, P95, P99, Max time.Duration }

// StageSpread is one stage's.
type StageSpread struct {
	Stage string
	Spread
}

func spread(ds []time.Duration) Spread {
	if len(ds) == 0 {
		return Spread{}
	}
	slices.Sort(ds)
	at := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	return Spread{P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: ds[len(ds)-1]}
}

func (s *storm) report(outcomes []outcome, series []sample) *Report {
	r := &Report{Machines: len(outcomes), Errors: map[string]int{}, series: series, outcomes: outcomes,
		MQTTMessages: s.progress.mqtt.Load(), StreamEvents: s.progress.stream.Load(), StreamOverflows: s.progress.overflows.Load()}
	var toReady []time.Duration
	var byStage [numStages][]time.Duration
	owner := map[string]string{}
	for _, o := range outcomes {
		r.Bytes += o.Bytes
		r.DHCPRetransmissions += o.DHCPResent
		r.BootRetries += o.BootRetries
		if o.IP != "" {
			if other, taken := owner[o.IP]; taken && other != o.MAC {
				r.DuplicateAddresses++
			}
			owner[o.IP] = o.MAC
		}
		if o.Err != "" {
			r.Failed++
			r.Errors[o.Failed.String()+": "+generalize(o.Err)]++
			continue
		}
		r.Ready++
		toReady = append(toReady, o.Ready)
		r.Wall = max(r.Wall, o.PowerOn+o.Ready)
		for st := range numStages {
			byStage[st] = append(byStage[st], o.Took[st])
		}
	}
	r.ToReady = spread(toReady)
	for st := range numStages {
		r.Stages = append(r.Stages, StageSpread{stageNames[st], spread(byStage[st])})
	}
	for i, x := range series {
		r.ServerPeakCores = max(r.ServerPeakCores, x.ServerCores)
		r.ServerPeakRSSMiB = max(r.ServerPeakRSSMiB, x.ServerRSSMiB)
		r.ServerEndRSSMiB = x.ServerRSSMiB
		if i > 0 {
			r.ServerCPUSeconds += x.ServerCores * (x.At - series[i-1].At).Seconds()
			r.StormCPUSeconds += x.StormCores * (x.At - series[i-1].At).Seconds()
		}
	}
	return r
}

// generalize takes the particulars (numbers, addresses) out of an error
// message so that like errors are counted together.
func generalize(msg string) string {
	msg, _, _ = strings.Cut(msg, "\n")
	fields := strings.Fields(msg)
	for i, f := range fields {
		if strings.ContainsAny(f, "0123456789") {
			fields[i] = "…"
		}
	}
	return strings.Join(fields, " ")
}

// Table is the report as Markdown, for BENCHMARKS.md.
func (r *Report) Table() string {
	var b strings.Builder
	ms := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1000, 'f', 0, 64) }
	sec := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) }
	fmt.Fprintf(&b, "%d machines: %d ready, %d failed, in %s s (first power-on → last ready); duplicate addresses %d; DHCP retransmissions %d; network boots retried %d; %.1f GiB served\n\n",
		r.Machines, r.Ready, r.Failed, sec(r.Wall), r.DuplicateAddresses, r.DHCPRetransmissions, r.BootRetries, float64(r.Bytes)/(1<<30))
	fmt.Fprintf(&b, "| | p50 | p95 | p99 | max |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| **power-on → ready** (s) | %s | %s | %s | %s |\n", sec(r.ToReady.P50), sec(r.ToReady.P95), sec(r.ToReady.P99), sec(r.ToReady.Max))
	for _, st := range r.Stages {
		fmt.Fprintf(&b, "| %s (ms) | %s | %s | %s | %s |\n", st.Stage, ms(st.P50), ms(st.P95), ms(st.P99), ms(st.Max))
	}
	fmt.Fprintf(&b, "\nServer: %.1f CPU-seconds, busiest second %.2f cores; resident memory peak %.0f MiB, %.0f MiB at the end (the storm's own machines: %.1f CPU-seconds). MQTT subscriber got %d messages, the console's event stream %d events (%d overflows).\n",
		r.ServerCPUSeconds, r.ServerPeakCores, r.ServerPeakRSSMiB, r.ServerEndRSSMiB, r.StormCPUSeconds, r.MQTTMessages, r.StreamEvents, r.StreamOverflows)
	if c := r.Console; c != nil {
		shown := fmt.Sprintf("never (its last count: %d)", c.LastReadyShown)
		if c.AllReadyShownAfter >= 0 {
			shown = sec(c.AllReadyShownAfter) + " s after the last one was"
		}
		fmt.Fprintf(&b, "\nThe console in Chromium: %d live events handled (at most %d in a second), %d overflows; the overview showed every machine ready %s; the first page of machines, %d in the store: %s ms (slowest of 5: %s ms). Chromium used %.1f CPU-seconds during the storm.\n",
			c.EventsHandled, c.PeakEventsPerSecond, c.Overflows, shown, r.Machines, ms(c.FirstPage), ms(c.FirstPageSlowest), c.CPUSeconds)
	}
	if len(r.Errors) > 0 {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return r.Errors[keys[i]] > r.Errors[keys[j]] })
		b.WriteString("\nFailures:\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "- %d × %s\n", r.Errors[k], k)
		}
	}
	return b.String()
}

// Write puts the report in dir: summary.json, machines.csv (one row per
// machine), series.csv (one row per second) and storm.svg (the series drawn).
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	summary, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.json"), summary, 0o644); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, "machines.csv"), r.machineRows()); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, "series.csv"), r.seriesRows()); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "storm.svg"), []byte(r.svg()), 0o644)
}

func (r *Report) machineRows() [][]string {
	head := []string{"mac", "ip", "power_on_s", "ready_s", "failed_stage", "error", "dhcp_resent", "boot_retries", "bytes", "slow"}
	for _, c := range stageColumns {
		head = append(head, c+"_ms")
	}
	rows := [][]string{head}
	for _, o := range r.outcomes {
		failed := ""
		if o.Err != "" {
			failed = stageColumns[o.Failed]
		}
		row := []string{o.MAC, o.IP, secs(o.PowerOn), secs(o.Ready), failed, o.Err, strconv.Itoa(o.DHCPResent), strconv.Itoa(o.BootRetries),
			strconv.FormatInt(o.Bytes, 10), strconv.FormatBool(o.Slow)}
		for _, d := range o.Took {
			row = append(row, strconv.FormatFloat(d.Seconds()*1000, 'f', 1, 64))
		}
		rows = append(rows, row)
	}
	return rows
}

func (r *Report) seriesRows() [][]string {
	head := []string{"t_s", "server_cores", "server_rss_mib", "storm_cores", "powered_on"}
	for _, c := range stageColumns {
		head = append(head, c+"_done")
	}
	rows := [][]string{append(head, "failed", "mqtt_messages", "stream_events", "browser_events")}
	for _, x := range r.series {
		row := []string{secs(x.At), strconv.FormatFloat(x.ServerCores, 'f', 3, 64), strconv.FormatFloat(x.ServerRSSMiB, 'f', 1, 64),
			strconv.FormatFloat(x.StormCores, 'f', 3, 64), strconv.FormatInt(x.PoweredOn, 10)}
		for _, n := range x.Done {
			row = append(row, strconv.FormatInt(n, 10))
		}
		rows = append(rows, append(row, strconv.FormatInt(x.Failed, 10), strconv.FormatInt(x.MQTT, 10), strconv.FormatInt(x.Stream, 10), strconv.FormatInt(x.Browser, 10)))
	}
	return rows
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

func writeCSV(path string, rows [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	if err := w.WriteAll(rows); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
