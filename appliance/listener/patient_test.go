package listener

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// script is a listener that fails Accept with each of errs in turn, then
// returns conn.
type script struct {
	net.Listener
	errs  []error
	calls int
	conn  net.Conn
}

func (s *script) Accept() (net.Conn, error) {
	s.calls++
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return nil, err
	}
	return s.conn, nil
}

func (s *script) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080} }

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

func TestPatientWaitsOutAShortageAndPassesOtherErrors(t *testing.T) {
	conn, peer := net.Pipe()
	defer conn.Close()
	defer peer.Close()
	for _, c := range []struct {
		name     string
		errs     []error
		want     error // nil: the connection after the errors
		sleeps   string
		warnings int
	}{
		{"descriptors", []error{acceptErr(syscall.EMFILE), acceptErr(syscall.EMFILE), acceptErr(syscall.ENFILE)}, nil, "[5ms 10ms 20ms]", 1},
		{"memory", []error{acceptErr(syscall.ENOBUFS), acceptErr(syscall.ENOMEM)}, nil, "[5ms 10ms]", 1},
		{"long", repeat(acceptErr(syscall.EMFILE), 10), nil, "[5ms 10ms 20ms 40ms 80ms 160ms 320ms 640ms 1s 1s]", 1},
		{"closed", []error{net.ErrClosed}, net.ErrClosed, "[]", 0},
		{"other", []error{acceptErr(syscall.EINVAL)}, syscall.EINVAL, "[]", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var log bytes.Buffer
			var slept []time.Duration
			l := Patient(&script{errs: c.errs, conn: conn}, "http", slog.New(slog.NewTextHandler(&log, nil))).(*patient)
			l.sleep = func(d time.Duration) { slept = append(slept, d) }
			got, err := l.Accept()
			if c.want == nil && (err != nil || got != conn) || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Accept = %v, %v; want the connection or %v", got, err, c.want)
			}
			if fmt.Sprint(slept) != c.sleeps {
				t.Errorf("waited %v, want %s", slept, c.sleeps)
			}
			if n := strings.Count(log.String(), "level=WARN"); n != c.warnings {
				t.Errorf("%d warnings, want %d:\n%s", n, c.warnings, log.String())
			}
			if c.warnings > 0 && !strings.Contains(log.String(), "listener=http address=127.0.0.1:8080") {
				t.Errorf("the warning does not say which listener:\n%s", log.String())
			}
		})
	}
}

// A shortage that lasts is told again each minute, with how many accepts
// failed meanwhile, and how to end it when it is the descriptors.
func TestPatientWarnsOnceAMinute(t *testing.T) {
	var log bytes.Buffer
	clock := time.Unix(1_800_000_000, 0)
	l := Patient(&script{}, "mqtt", slog.New(slog.NewTextHandler(&log, nil))).(*patient)
	l.now = func() time.Time { return clock }
	for range 5 {
		l.warn(acceptErr(syscall.EMFILE))
		clock = clock.Add(20 * time.Second)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "failed_accepts=1") || !strings.Contains(lines[1], "failed_accepts=3") {
		t.Fatalf("want a warning at 0 s and one at 60 s counting three failures:\n%s", log.String())
	}
	if !strings.Contains(lines[0], "open_files_limit=") || !strings.Contains(lines[0], "LimitNOFILE") {
		t.Errorf("the warning does not say the limit and how to raise it:\n%s", lines[0])
	}
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}
