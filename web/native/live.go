package native

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/slipway/slipway/appliance/outbox"
)

// Events is what the model announces, as the console's live view follows
// it: every change committed, in order, from a given event on.
type Events interface {
	Subscribe(ctx context.Context, after int64) (*outbox.Subscription, error)
}

// liveEvents streams the announcements as Server-Sent Events: every state
// change, heartbeat, BMC status and task step, as it is committed, each
// with its outbox id. The browser's EventSource reconnects by itself
// (after retry ms) and sends the last id it saw as Last-Event-ID: it is
// given what it missed first. A client too slow to keep up (or away
// longer than the outbox keeps events) is told "overflow", and reloads
// what it shows.
func liveEvents(ev Events, ping time.Duration, done <-chan struct{}) fiber.Handler {
	return func(c *fiber.Ctx) error {
		after, err := lastEventID(c)
		if err != nil {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
		sub, err := ev.Subscribe(c.UserContext(), after)
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, "text/event-stream")
		c.Set(fiber.HeaderCacheControl, "no-cache")
		c.Set("X-Accel-Buffering", "no")
		c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
			defer sub.Close()
			streamEvents(w, sub, ping, done)
		})
		return nil
	}
}

// lastEventID is where a reconnecting client left off: the Last-Event-ID
// header its EventSource sends, or ?after= for a first connection that
// knows; 0 for none.
func lastEventID(c *fiber.Ctx) (int64, error) {
	raw := c.Get("Last-Event-ID", c.Query("after"))
	if raw == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("Last-Event-ID %q is not an event id", raw)
	}
	return id, nil
}

// streamEvents writes until the client goes or the server stops.
func streamEvents(w *bufio.Writer, sub *outbox.Subscription, every time.Duration, done <-chan struct{}) {
	fmt.Fprint(w, "retry: 2000\n: connected\n\n")
	if w.Flush() != nil {
		return
	}
	ping := time.NewTicker(every)
	defer ping.Stop()
	for {
		select {
		case <-done:
			return
		case e := <-sub.Events():
			if sub.Overflowed() {
				fmt.Fprint(w, "event: overflow\ndata: {}\n\n")
			}
			writeIfShown(w, e)
			// Whatever else is waiting goes out in the same write: a
			// flush per event cannot keep up with a site booting (thousands
			// a second), and the subscriber would overflow.
			for range len(sub.Events()) {
				writeIfShown(w, <-sub.Events())
			}
		case <-ping.C:
			if sub.Overflowed() {
				fmt.Fprint(w, "event: overflow\ndata: {}\n\n")
			}
			fmt.Fprint(w, ": ping\n\n")
		}
		if w.Flush() != nil {
			return // the client went away
		}
	}
}

// writeIfShown writes e if it is one the console shows.
func writeIfShown(w *bufio.Writer, e outbox.Event) {
	if strings.HasPrefix(e.Topic, "NICO/") || strings.HasPrefix(e.Topic, "slipway/") {
		writeEvent(w, e)
	}
}

// writeEvent writes e as one server-sent event whose data is
// {"topic": ..., "message": ...}. The message is the payload as it is, not
// re-encoded: a storm's console stream carries thousands a second, and
// encoding each again (which checks and compacts it once more) was most of
// the stream's cost.
func writeEvent(w *bufio.Writer, e outbox.Event) {
	message := e.Payload
	if len(message) == 0 || !json.Valid(message) {
		message = []byte("null") // a cleared retained message: the thing is gone
	} else if bytes.ContainsAny(message, "\r\n") {
		// An event's data is one line: valid JSON may still spread over
		// several, which compacting joins.
		var compact bytes.Buffer
		json.Compact(&compact, message)
		message = compact.Bytes()
	}
	topic, _ := json.Marshal(e.Topic)
	fmt.Fprintf(w, "id: %d\nevent: %s\ndata: {\"topic\":%s,\"message\":%s}\n\n", e.ID, eventKind(e.Topic), topic, message)
}

// eventKind names a topic's events for the console: state, onboarding,
// bmc, task.
func eventKind(topic string) string {
	parts := strings.Split(topic, "/")
	switch {
	case strings.HasPrefix(topic, "NICO/"):
		return "state"
	case len(parts) >= 3 && parts[2] == "machine":
		return parts[len(parts)-1]
	case len(parts) >= 3:
		return parts[2]
	}
	return "message"
}
