package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const writerEnv = "SLIPWAY_STORE_CRASH_WRITER"

// TestCommittedRowsSurviveKill9 runs a child process that commits
// multi-row transactions in a tight loop, reports each commit on stdout, and
// is killed with SIGKILL mid-stream. The database must then open cleanly
// with every reported commit present and no transaction half-applied.
func TestCommittedRowsSurviveKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slipway.db")
	committed := map[int]bool{}
	killChildWhen(t, "TestCrashWriterChild", writerEnv+"="+path, func(line string) bool {
		if n, ok := strings.CutPrefix(line, "committed "); ok {
			i, _ := strconv.Atoi(n)
			committed[i] = true
		}
		return len(committed) >= 400
	})

	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("database does not open after kill -9: %v", err)
	}
	defer s.Close()
	var integrity string
	if err := s.db.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check = %q, %v", integrity, err)
	}
	for i := range committed {
		if _, err := s.Machine(context.Background(), fmt.Sprintf("m%06d", i)); err != nil {
			t.Fatalf("commit %d was reported but is missing: %v", i, err)
		}
	}
	// Every transaction wrote a machine, a MAC, a transition and an event:
	// all four counts must agree, whatever the kill interrupted.
	var machines, macs, transitions, events int
	err = s.db.QueryRow(`SELECT (SELECT count(*) FROM machines), (SELECT count(*) FROM machine_macs),
		(SELECT count(*) FROM transitions), (SELECT count(*) FROM outbox)`).Scan(&machines, &macs, &transitions, &events)
	if err != nil {
		t.Fatal(err)
	}
	if machines < len(committed) || macs != machines || transitions != machines || events != machines {
		t.Fatalf("half-applied transaction: %d machines, %d MACs, %d transitions, %d events (%d reported)",
			machines, macs, transitions, events, len(committed))
	}
	t.Logf("%d commits reported, %d rows found after kill -9", len(committed), machines)
}

// killChildWhen runs the test child of this test binary with env set,
// hands enough each line it prints until enough says so, and then kills
// it with SIGKILL while it is still writing.
func killChildWhen(t *testing.T, child, env string, enough func(line string) bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.v")
	cmd.Env = append(os.Environ(), env)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	lines := bufio.NewScanner(stdout)
	for !done && lines.Scan() {
		done = enough(lines.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !done {
		t.Fatalf("%s stopped before it had written enough", child)
	}
}

// TestCrashWriterChild is the child of TestCommittedRowsSurviveKill9; it does
// nothing unless that test started it.
func TestCrashWriterChild(t *testing.T) {
	path := os.Getenv(writerEnv)
	if path == "" {
		t.Skip("runs only as the child of TestCommittedRowsSurviveKill9")
	}
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		err := s.Update(context.Background(), func(tx *Tx) error {
			id := fmt.Sprintf("m%06d", i)
			if _, err := tx.CreateMachine(created(id, fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", byte(i>>24), byte(i>>16), byte(i>>8), byte(i))), "crash test"); err != nil {
				return err
			}
			tx.Enqueue(Event{Topic: "NICO/v1/machine/" + id + "/state", Payload: []byte(`{}`), QoS: 1, Retain: true})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Written straight to the pipe, unbuffered: a line out means a commit done.
		fmt.Fprintf(os.Stdout, "committed %d\n", i)
	}
}
