//go:build e2e

package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

// Rounds of kill -9 at a random moment while a fleet netboots (DHCP,
// TFTP, DHCP again as iPXE, its script, kernel and initrd over HTTP) and
// onboards (cloud-init, heartbeats), each followed by a restart. After
// every restart: the store passes SQLite's integrity check; no address is
// given to two MACs, nor two addresses kept for one; every node that finished
// onboarding before a kill (every heartbeat of it acknowledged) has them
// all; every committed event is published. SLIPWAY_KILL_ROUNDS sets the
// number of rounds (20).
func TestKill9RoundsWhileAFleetNetboots(t *testing.T) {
	rounds := 20
	if s := os.Getenv("SLIPWAY_KILL_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	const fleet, perRound = 60, 24
	tcp, udp := testkit.FreePorts(t, "tcp", 2), testkit.FreePorts(t, "udp", 2)
	httpPort, dhcpPort, tftpPort := tcp[0], udp[0], udp[1]
	config := fmt.Sprintf(`
lan: {interface: lo, address: 127.0.0.1/8}
data_dir: DATA_DIR
log: {level: warn}
# The whole fleet comes from 127.0.0.1: one address may use every connection.
http: {port: %d, max_connections_per_address: 4096}
https: {port: 0}
tftp: {root: TFTP_ROOT, port: %d}
mqtt: {port: %d, websocket_port: 0}
dhcp: {port: %d, range: {start: 127.0.1.1, end: 127.0.1.254}}
netboot: {router_advertisements: false}
profiles:
  demo: {kernel: demo/vmlinuz, initrd: demo/initrd.img, cmdline: "`+testbed.DemoProfileCmdline+`"}
default_profile: demo
users:
`+e2eUserYAML, httpPort, tftpPort, tcp[1], dhcpPort)
	a := prepareServe(t, testbed.Host{}, config, func(dataDir string) {})
	if err := testbed.SeedDemoFiles(a.tftpRoot, filepath.Join(a.dataDir, "assets"), filepath.Join(a.dataDir, "templates")); err != nil {
		t.Fatal(err)
	}
	a.url = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitReady(t, a)

	onboarded := map[string]bool{} // MACs whose every heartbeat was acknowledged
	given := map[string]string{}   // address → the MAC DHCP acknowledged it to (leases last an hour: never two)
	var mu sync.Mutex
	for round := range rounds {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, i := range rand.Perm(fleet)[:perRound] {
			mac := net.HardwareAddr{0x02, 0xdd, 0, 0, 0, byte(i)}
			node := testbed.Node{MAC: mac, DHCP: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: dhcpPort}, TFTPPort: tftpPort,
				Onboard: true, StageDelay: 5 * time.Millisecond}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := node.Boot(ctx)
				mu.Lock()
				defer mu.Unlock()
				if r.IP != nil {
					if other, ok := given[r.IP.String()]; ok && other != mac.String() {
						t.Errorf("%s was given to %s and to %s", r.IP, other, mac)
					}
					given[r.IP.String()] = mac.String()
				}
				if err == nil && r.Onboarded {
					onboarded[mac.String()] = true
				}
			}()
		}
		time.Sleep(time.Duration(100+rand.IntN(1400)) * time.Millisecond)
		a.cmd.Process.Kill() // SIGKILL: no stop, no flush
		<-a.done
		cancel()
		wg.Wait()
		checkStoreAfterKill(t, a, round)
		a.launch(t)
		waitReady(t, a)
		checkOnboardedKept(t, a, onboarded, round)
		if t.Failed() {
			t.Fatalf("round %d of %d failed", round+1, rounds)
		}
	}
	waitPublished(t, a)
	t.Logf("%d rounds of kill -9; %d addresses given, none twice; %d MACs had onboarded completely before some kill, every heartbeat of them kept",
		rounds, len(given), len(onboarded))
}

// checkStoreAfterKill opens the killed appliance's database as it was
// left: SQLite's integrity check, and one bound lease per MAC (the table
// has one row per address, so no address can be stored for two).
func checkStoreAfterKill(t *testing.T, a *appliance, round int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(a.dataDir, "slipway.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var integrity string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Errorf("round %d: integrity check after kill -9: %q %v", round+1, integrity, err)
	}
	var dup string
	switch err := db.QueryRow(`SELECT mac FROM leases WHERE state = 'bound' GROUP BY mac HAVING count(*) > 1`).Scan(&dup); {
	case err == nil:
		t.Errorf("round %d: %s holds two bound leases", round+1, dup)
	case err != sql.ErrNoRows:
		t.Fatal(err)
	}
}

// checkOnboardedKept: every node that had every heartbeat acknowledged has
// them all in /clients.
func checkOnboardedKept(t *testing.T, a *appliance, onboarded map[string]bool, round int) {
	t.Helper()
	var clients map[string]struct {
		Stages []struct{ Stage, Phase string }
	}
	getJSON(t, a.url+"/clients", &clients)
	for mac := range onboarded {
		have := map[string]bool{}
		for _, s := range clients[mac].Stages {
			have[s.Stage+"/"+s.Phase] = true
		}
		for _, stage := range domain.Stages {
			for _, phase := range []domain.Phase{domain.PhaseStarted, domain.PhaseDone} {
				if !have[string(stage)+"/"+string(phase)] {
					t.Errorf("round %d: %s onboarded before a kill, and its %s/%s heartbeat is lost", round+1, mac, stage, phase)
				}
			}
		}
	}
}

// waitPublished waits until the relay has published every committed event.
func waitPublished(t *testing.T, a *appliance) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(a.dataDir, "slipway.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var pending int
		err := db.QueryRow(`SELECT count(*) FROM outbox WHERE id > (SELECT last_id FROM outbox_cursors WHERE consumer = 'mqtt')`).Scan(&pending)
		if err == nil && pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d committed events still unpublished (%v)", pending, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
