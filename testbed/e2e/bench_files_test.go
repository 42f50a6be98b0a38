//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

var wrkTransfer = regexp.MustCompile(`Transfer/sec:\s+([0-9.]+)([KMG]?B)`)
var wrkRequests = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// TestBenchFilesAgainstPeers serves the same files from Slipway and nginx
// (HTTP, see benchHTTP) and from Slipway and tftpd-hpa (TFTP) in one
// namespace LAN and measures them with the same clients. SLIPWAY_BENCH=1
// only.
func TestBenchFilesAgainstPeers(t *testing.T) {
	benchOnly(t, "bench-files")
	requireCommands(t, map[string]string{"wrk": "wrk", "nginx": "nginx-light", "in.tftpd": "tftpd-hpa", "curl": "curl", "atftp": "atftp"})
	seconds := envInt("SLIPWAY_BENCH_SECONDS", 10)
	servers := benchServers()
	if slices.Contains(servers, "nginx") {
		t.Run("http", func(t *testing.T) { benchHTTP(t, seconds, envInt("SLIPWAY_BENCH_ROUNDS", 3)) })
	}
	if slices.Contains(servers, "tftpd-hpa") {
		t.Run("tftp", func(t *testing.T) { benchTFTP(t, seconds) })
	}
}

// httpCase is one wrk load, run against each server in turn.
type httpCase struct {
	name, script, path string
}

// benchHTTP runs Slipway and nginx side by side on one LAN, each with the
// same files, and has wrk with 100 connections (100 machines booting at
// once) fetch from one and then the other, in rounds whose order rotates,
// so that both meet the same machine. The ratio is the median of the
// rounds' ratios.
func benchHTTP(t *testing.T, seconds, rounds int) {
	lan := newLAN(t, "10.88.0.1/24")
	client, err := lan.AddHost(context.Background(), "cli", "10.88.0.2/24")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	testkit.WriteRandomFile(t, filepath.Join(root, "assets", "bench", "vmlinuz"), 8<<20)
	testkit.WriteRandomFile(t, filepath.Join(root, "assets", "bench", "initrd.img"), 32<<20)
	testkit.WriteRandomFile(t, filepath.Join(root, "assets", "bench", "installer.iso"), isoSize)
	scripts := map[string]string{"boot.lua": wrkBootScript, "ranges.lua": wrkRangeScript}
	for name, text := range scripts {
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := prepareServe(t, lan.Server, fmt.Sprintf("lan: {interface: lan0, address: 10.88.0.1/24}\ndata_dir: %s\nhttp: {port: 8080}\nlog: {level: warn}\ndhcp: {mode: off}\n", root), nil)
	waitReady(t, a)
	conf := filepath.Join(root, "nginx.conf")
	// Debian's stock nginx.conf, less what does not apply (logs, MIME
	// types, gzip of text): one worker per core, sendfile, tcp_nopush.
	os.WriteFile(conf, []byte(fmt.Sprintf(`daemon off; user root; worker_processes auto; pid %s/nginx.pid; error_log stderr;
events { worker_connections 768; }
http { access_log off; sendfile on; tcp_nopush on; keepalive_timeout 65; server { listen 10.88.0.1:8081; root %s; } }
`, root, root)), 0o644)
	stop := startPeerProcess(t, lan.Server.Command(context.Background(), "nginx", "-c", conf, "-p", root))
	defer stop()
	ports := map[string]string{"slipway": "8080", "nginx": "8081"}
	cases := []httpCase{
		{"HTTP 8 MiB kernel and 32 MiB initrd, wrk -c100", "boot.lua", "/assets/bench/vmlinuz"},
		{"HTTP 256 MiB image, random 1 MiB Range requests, wrk -c100", "ranges.lua", "/assets/bench/installer.iso"},
	}
	order := []string{"slipway", "nginx"}
	var table strings.Builder
	fmt.Fprintf(&table, "| test | server | MiB/s (rounds) | median |\n|---|---|---|---|\n")
	var summary []string
	for _, server := range order {
		checkRangeAnswer(t, client, "http://10.88.0.1:"+ports[server]+"/assets/bench/installer.iso")
	}
	for _, c := range cases {
		run := func(server string, seconds int) float64 {
			return wrkRun(t, client, c, "http://10.88.0.1:"+ports[server]+c.path, filepath.Join(root, c.script), seconds)
		}
		// A short load on each first, so that neither meets the other's
		// page cache or its own cold start in the first round.
		for _, server := range order {
			run(server, 2)
		}
		rates := map[string][]float64{}
		for round := range rounds {
			for i := range order {
				server := order[(i+round)%len(order)]
				rates[server] = append(rates[server], run(server, seconds))
			}
		}
		ratios := make([]float64, rounds)
		for r := range rounds {
			ratios[r] = rates["slipway"][r] / rates["nginx"][r]
		}
		for _, server := range order {
			fmt.Fprintf(&table, "| %s | %s | %s | %.0f |\n", c.name, server, joinRates(rates[server], "%.0f"), middle(rates[server]))
		}
		summary = append(summary, fmt.Sprintf("%s: slipway/nginx = %.2f (rounds %s)", c.name, middle(ratios), joinRates(ratios, "%.2f")))
	}
	t.Logf("\n%s\n%s\n(%d rounds of %d s, order rotated; %d cores shared by the servers and wrk)", table.String(), strings.Join(summary, "\n"), rounds, seconds, runtime.NumCPU())
}

// wrkRun runs one wrk load and returns its MiB/s, failing on any answer
// other than 200 or 206.
func wrkRun(t *testing.T, client testbed.Host, c httpCase, url, script string, seconds int) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+30)*time.Second)
	defer cancel()
	out, err := client.Run(ctx, "wrk", "-t", "2", "-c", "100", "-d", fmt.Sprintf("%ds", seconds), "--timeout", "10s", "-s", script, url)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "Non-2xx") || strings.Contains(out, "Socket errors") {
		t.Fatalf("%s from %s: not every request answered in time:\n%s", c.name, url, out)
	}
	return wrkMiBps(t, out)
}

// checkRangeAnswer asks url for its second MiB with curl, as the Range
// load does, and fails unless the answer is a 206 of exactly that MiB:
// wrk counts any 2xx, and a whole image sent for a range would pass.
func checkRangeAnswer(t *testing.T, client testbed.Host, url string) {
	t.Helper()
	out, err := client.Run(context.Background(), "curl", "-sS", "-o", "/dev/null", "-r", "1048576-2097151", "-w", "%{http_code} %{size_download}", url)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "206 1048576" {
		t.Fatalf("a 1 MiB Range request to %s was answered %q (status, bytes), want a 206 of 1048576 bytes", url, out)
	}
}

func joinRates(vs []float64, format string) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf(format, v)
	}
	return strings.Join(parts, ", ")
}

// benchTFTP measures Slipway and tftpd-hpa, one after the other: 16
// parallel curl tftp:// fetches of a 1 MiB loader, and a 50 MB file by
// atftp with and without windowsize.
func benchTFTP(t *testing.T, seconds int) {
	var table strings.Builder
	fmt.Fprintf(&table, "| test | server | result |\n|---|---|---|\n")
	tftpRates := map[string]float64{}
	bigRates := map[string]float64{}
	for _, server := range []string{"slipway", "tftpd-hpa"} {
		t.Run(server, func(t *testing.T) {
			lan := newLAN(t, "10.88.0.1/24")
			client, err := lan.AddHost(context.Background(), "cli", "10.88.0.2/24")
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			testkit.WriteRandomFile(t, filepath.Join(root, "tftp", "ipxe.efi"), 1<<20)
			testkit.WriteRandomFile(t, filepath.Join(root, "tftp", "big.img"), bigTFTPFile)
			switch server {
			case "slipway":
				// The 16 curl loops share one address, which the
				// per-address TFTP limits exist to slow down; 16 machines
				// would each have their own, so they are lifted here.
				a := prepareServe(t, lan.Server, fmt.Sprintf("lan: {interface: lan0, address: 10.88.0.1/24}\ndata_dir: %s\ntftp: {root: %s, requests_per_address: 0, transfers_per_address: 0}\nhttp: {port: 8080}\nlog: {level: warn}\ndhcp: {mode: off}\n",
					root, filepath.Join(root, "tftp")), nil)
				waitReady(t, a)
			case "tftpd-hpa":
				stop := startPeerProcess(t, lan.Server.Command(context.Background(), "in.tftpd", "--foreground", "--listen",
					"--address", "10.88.0.1:69", "--secure", "--blocksize", "1468", filepath.Join(root, "tftp")))
				defer stop()
			}
			rate := tftpFetches(t, client, "10.88.0.1", 16, seconds)
			tftpRates[server] = rate
			fmt.Fprintf(&table, "| TFTP 1 MiB loader, 16 curl in parallel | %s | %.1f fetches/s |\n", server, rate)
			for _, window := range []int{1, 64} {
				mbps := atftpMBps(t, client, "10.88.0.1", filepath.Join(root, "tftp", "big.img"), window)
				bigRates[fmt.Sprintf("%s/%d", server, window)] = mbps
				fmt.Fprintf(&table, "| TFTP 50 MB, atftp blksize 1468 windowsize %d | %s | %.1f MB/s |\n", window, server, mbps)
			}
		})
	}
	if tftpRates["tftpd-hpa"] > 0 {
		fmt.Fprintf(&table, "\nTFTP slipway/tftpd-hpa = %.2f (%ds each, %d cores)\n", tftpRates["slipway"]/tftpRates["tftpd-hpa"], seconds, runtime.NumCPU())
	}
	if bigRates["tftpd-hpa/64"] > 0 {
		fmt.Fprintf(&table, "TFTP 50 MB with windowsize 64 asked: slipway/tftpd-hpa = %.1f (tftpd-hpa does not implement RFC 7440 and sends in lock-step)\n",
			bigRates["slipway/64"]/bigRates["tftpd-hpa/64"])
	}
	t.Logf("\n%s", table.String())
}

// isoSize is an installer image's, read by Range requests of 1 MiB at
// random offsets (a BMC's virtual media, an installer reading its ISO).
const isoSize = 256 << 20

// wrkBootScript has wrk fetch a kernel and then its initrd, as each
// booting machine does.
const wrkBootScript = `
local n = 0
request = function()
  n = n + 1
  if n % 2 == 0 then
    return wrk.format("GET", "/assets/bench/initrd.img")
  end
  return wrk.format("GET", "/assets/bench/vmlinuz")
end
`

// wrkRangeScript has wrk ask for a random MiB of the image each time.
const wrkRangeScript = `
request = function()
  local off = math.random(0, 255) * 1048576
  return wrk.format("GET", nil, {["Range"] = "bytes=" .. off .. "-" .. (off + 1048575)})
end
`

// bigTFTPFile is the size of the file fetched whole over TFTP: an
// installer image sent by TFTP to firmware without HTTP.
const bigTFTPFile = 50_000_000

// atftpMBps fetches the big file three times with Debian's atftp asking
// for windowsize (RFC 7440), checks it arrived whole, and returns the
// median rate in MB/s.
func atftpMBps(t *testing.T, client testbed.Host, host, original string, window int) float64 {
	t.Helper()
	want, err := os.ReadFile(original)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "big.img")
	var rates []float64
	for range 3 {
		os.Remove(out)
		start := time.Now()
		if log, err := client.Run(context.Background(), "atftp", "-g", "-r", "big.img", "-l", out,
			"--option", "blksize 1468", "--option", fmt.Sprintf("windowsize %d", window), host); err != nil {
			t.Fatalf("atftp: %v\n%s", err, log)
		}
		took := time.Since(start)
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("atftp with windowsize %d from %s: the file did not arrive whole (%d of %d bytes, %v)", window, host, len(got), len(want), err)
		}
		rates = append(rates, float64(len(want))/1e6/took.Seconds())
	}
	return middle(rates)
}

func wrkMiBps(t *testing.T, out string) float64 {
	t.Helper()
	m := wrkTransfer.FindStringSubmatch(out)
	if m == nil || !wrkRequests.MatchString(out) {
		t.Fatalf("no throughput in wrk's output:\n%s", out)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	switch m[2] {
	case "GB":
		v *= 1024
	case "KB":
		v /= 1024
	case "B":
		v /= 1 << 20
	}
	return v
}

// tftpFetches runs workers loops of curl tftp:// fetches for the given time
// and returns completed fetches per second.
func tftpFetches(t *testing.T, client testbed.Host, host string, workers, seconds int) float64 {
	t.Helper()
	var mu sync.Mutex
	done := 0
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := client.Run(context.Background(), "curl", "-fsS", "--tftp-blksize", "1468", "-o", "/dev/null", "tftp://"+host+"/ipxe.efi"); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				done++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return float64(done) / time.Since(start).Seconds()
}

func benchServers() []string {
	if s := os.Getenv("SLIPWAY_BENCH_SERVERS"); s != "" {
		return strings.Split(s, ",")
	}
	return []string{"slipway", "nginx", "tftpd-hpa"}
}
