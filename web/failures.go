package web

import (
	"errors"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/listener"
)

// ErrTryAgain is an answer that cannot be made now for a reason that
// passes by itself: 503 with Retry-After, which iPXE and cloud-init obey
// by asking again, where a 404 or a 500 would end a machine's boot.
var ErrTryAgain = errors.New("cannot be answered now; try again")

// passes says whether err is ErrTryAgain or the system short of
// descriptors or memory (a site booting at once past the open files
// limit), which passes as connections close.
func passes(err error) bool {
	return errors.Is(err, ErrTryAgain) || listener.Shortage(err)
}

// retryAfterSeconds is what a client told to try again waits.
const retryAfterSeconds = "1"

// failureLog logs requests that failed on the server's side. Each one is
// an error, but those that pass (try again) come in thousands while a
// site boots short of descriptors: they are logged once a minute, with
// how many there were.
type failureLog struct {
	passing listener.Throttle
}

func newFailureLog() *failureLog {
	return &failureLog{passing: listener.Throttle{Every: time.Minute}}
}

// failed logs err (its status code already decided) in log, with attrs
// saying which request it was.
func (f *failureLog) failed(log *slog.Logger, code int, err error, attrs ...any) {
	if code < 500 {
		return
	}
	if !passes(err) {
		log.Error("request failed", append(attrs, "error", err)...)
		return
	}
	if warn, n := f.passing.Note(time.Now()); warn {
		log.Warn("requests answered with 503 and Retry-After: they cannot be served now, and the clients ask again",
			append(attrs, "error", err, "since_last_warning", n, "fix", "if it says too many open files, raise LimitNOFILE= in the service unit")...)
	}
}

// tellToRetry sets Retry-After on an answer to a request that failed for
// a passing reason.
func tellToRetry(c *fiber.Ctx, err error) {
	if passes(err) {
		c.Set(fiber.HeaderRetryAfter, retryAfterSeconds)
	}
}
