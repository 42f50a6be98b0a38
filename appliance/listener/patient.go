package listener

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// Patient is ln, retrying an Accept that failed for want of descriptors
// or memory; name says which listener in the warning ("http", "mqtt").
func Patient(ln net.Listener, name string, log *slog.Logger) net.Listener {
	return &patient{Listener: ln, name: name, log: log, warnings: Throttle{Every: warnEvery}, sleep: time.Sleep, now: time.Now}
}

type patient struct {
	net.Listener
	name string
	log  *slog.Logger
	// warnings holds back all but one warning a minute.
	warnings Throttle
	sleep    func(time.Duration)
	now      func() time.Time
}

// Backoff between retries, as net/http's Server.Serve has it.
const (
	firstDelay = 5 * time.Millisecond
	maxDelay   = time.Second
	warnEvery  = time.Minute
)

// Accept returns the next connection, waiting out a shortage.
func (l *patient) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil || !Shortage(err) {
			return c, err
		}
		l.warn(err)
		delay = min(max(2*delay, firstDelay), maxDelay)
		l.sleep(delay)
	}
}

// Shortage says whether err is the system running short of something a
// connection needs (descriptors, buffers, memory), which passes as
// connections close: not a reason to stop serving.
func Shortage(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (l *patient) warn(err error) {
	warn, n := l.warnings.Note(l.now())
	if !warn {
		return
	}
	attrs := []any{"listener", l.name, "address", l.Addr().String(), "error", err, "failed_accepts", n}
	if errors.Is(err, syscall.EMFILE) {
		var lim syscall.Rlimit
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
			attrs = append(attrs, "open_files_limit", lim.Cur)
		}
		attrs = append(attrs, "fix", "raise the open files limit (LimitNOFILE= in the service unit, or ulimit -n) above the connections a booting site holds: one per machine and more")
	}
	l.log.Warn("cannot accept connections for now: the system is short of resources; they wait in the kernel's queue and are accepted as others close", attrs...)
}
