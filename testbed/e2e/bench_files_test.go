//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
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
)

var wrkTransfer = regexp.MustCompile(`Transfer/sec:\s+([0-9.]+)([KMG]?B)`)
var wrkRequests = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// TestBenchFilesAgainstPeers serves the same files from Slipway, nginx
// (HTTP) and tftpd-hpa (TFTP) in one namespace LAN and measures them with
// the same clients: wrk for an 8 MiB kernel over HTTP, and 16 parallel
// curl tftp:// fetches of a 1 MiB loader. SLIPWAY_BENCH=1 only.
func TestBenchFilesAgainstPeers(t *testing.T) {
	if os.Getenv("SLIPWAY_BENCH") == "" {
		t.Skip("a benchmark: run it with make bench-files")
	}
	requireCommands(t, map[string]string{"wrk": "wrk", "nginx": "nginx-light", "in.tftpd": "tftpd-hpa", "curl": "curl", "atftp": "atftp"})
	seconds := envInt("SLIPWAY_BENCH_SECONDS", 10)
	var table strings.Builder
	fmt.Fprintf(&table, "| test | server | result |\n|---|---|---|\n")
	httpRates := map[string]float64{}
	rangeRates := map[string]float64{}
	tftpRates := map[string]float64{}
	bigRates := map[string]float64{}
	for _, server := range benchServers() {
		t.Run(server, func(t *testing.T) {
			lan := newLAN(t, "10.88.0.1/24")
			client, err := lan.AddHost(context.Background(), "cli", "10.88.0.2/24")
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			writeRandom(t, filepath.Join(root, "assets", "bench", "vmlinuz"), 8<<20)
			writeRandom(t, filepath.Join(root, "assets", "bench", "installer.iso"), isoSize)
			rangeScript := filepath.Join(root, "ranges.lua")
			if err := os.WriteFile(rangeScript, []byte(wrkRangeScript), 0o644); err != nil {
				t.Fatal(err)
			}
			writeRandom(t, filepath.Join(root, "tftp", "ipxe.efi"), 1<<20)
			writeRandom(t, filepath.Join(root, "tftp", "big.img"), bigTFTPFile)
			httpURL, tftpHost := "", ""
			switch server {
			case "slipway":
				// The 16 curl loops share one address, which the
				// per-address TFTP limits exist to slow down; 16 machines
				// would each have their own, so they are lifted here.
				a := prepareServe(t, lan.Server, fmt.Sprintf("lan: {interface: lan0, address: 10.88.0.1/24}\ndata_dir: %s\ntftp: {root: %s, requests_per_address: 0, transfers_per_address: 0}\nhttp: {port: 8080}\nlog: {level: warn}\ndhcp: {mode: off}\n",
					root, filepath.Join(root, "tftp")), nil)
				waitReady(t, a)
				httpURL, tftpHost = "http://10.88.0.1:8080/assets/bench/vmlinuz", "10.88.0.1"
			case "nginx":
				conf := filepath.Join(root, "nginx.conf")
				os.WriteFile(conf, []byte(fmt.Sprintf(`daemon off; user root; worker_processes auto; pid %s/nginx.pid; error_log stderr;
events { worker_connections 1024; }
http { access_log off; sendfile on; tcp_nopush on; server { listen 10.88.0.1:8080; root %s; } }
`, root, root)), 0o644)
				stop := startPeerProcess(t, lan.Server.Command(context.Background(), "nginx", "-c", conf, "-p", root))
				defer stop()
				httpURL = "http://10.88.0.1:8080/assets/bench/vmlinuz"
			case "tftpd-hpa":
				stop := startPeerProcess(t, lan.Server.Command(context.Background(), "in.tftpd", "--foreground", "--listen",
					"--address", "10.88.0.1:69", "--secure", "--blocksize", "1468", filepath.Join(root, "tftp")))
				defer stop()
				tftpHost = "10.88.0.1"
			}
			if httpURL != "" {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+30)*time.Second)
				defer cancel()
				out, err := client.Run(ctx, "wrk", "-t", "2", "-c", "16", "-d", fmt.Sprintf("%ds", seconds), "--timeout", "5s", httpURL)
				if err != nil {
					t.Fatal(err)
				}
				mbps := wrkMiBps(t, out)
				httpRates[server] = mbps
				fmt.Fprintf(&table, "| HTTP 8 MiB kernel, wrk -c16 | %s | %.0f MiB/s |\n", server, mbps)
				isoURL := strings.Replace(httpURL, "vmlinuz", "installer.iso", 1)
				out, err = client.Run(ctx, "wrk", "-t", "2", "-c", "16", "-d", fmt.Sprintf("%ds", seconds), "--timeout", "5s", "-s", rangeScript, isoURL)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(out, "Requests/sec") || strings.Contains(out, "Non-2xx") {
					t.Fatalf("Range requests were not all answered 206:\n%s", out)
				}
				mbps = wrkMiBps(t, out)
				rangeRates[server] = mbps
				fmt.Fprintf(&table, "| HTTP 256 MiB image, random 1 MiB Range requests, wrk -c16 | %s | %.0f MiB/s |\n", server, mbps)
			}
			if tftpHost != "" {
				rate := tftpFetches(t, client, tftpHost, 16, seconds)
				tftpRates[server] = rate
				fmt.Fprintf(&table, "| TFTP 1 MiB loader, 16 curl in parallel | %s | %.1f fetches/s |\n", server, rate)
				for _, window := range []int{1, 64} {
					mbps := atftpMBps(t, client, tftpHost, filepath.Join(root, "tftp", "big.img"), window)
					bigRates[fmt.Sprintf("%s/%d", server, window)] = mbps
					fmt.Fprintf(&table, "| TFTP 50 MB, atftp blksize 1468 windowsize %d | %s | %.1f MB/s |\n", window, server, mbps)
				}
			}
		})
	}
	if httpRates["nginx"] > 0 && tftpRates["tftpd-hpa"] > 0 {
		fmt.Fprintf(&table, "\nHTTP slipway/nginx = %.2f, TFTP slipway/tftpd-hpa = %.2f (%ds each, %d cores)\n",
			httpRates["slipway"]/httpRates["nginx"], tftpRates["slipway"]/tftpRates["tftpd-hpa"], seconds, runtime.NumCPU())
	}
	if rangeRates["nginx"] > 0 {
		fmt.Fprintf(&table, "HTTP Range requests slipway/nginx = %.2f\n", rangeRates["slipway"]/rangeRates["nginx"])
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
	slices.Sort(rates)
	return rates[1]
}

func writeRandom(t *testing.T, path string, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
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
