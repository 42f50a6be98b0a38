package native

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Events is the event bus, as the console's live view follows it.
type Events interface {
	Watch(filter string, fn func(topic string, payload []byte)) (stop func(), err error)
}

type busMessage struct {
	topic   string
	payload []byte
}

// liveEvents streams the bus as Server-Sent Events: every state change,
// heartbeat, BMC status and task step, as it is published. The browser's
// EventSource reconnects by itself (after retry ms); a client too slow to
// keep up is told "overflow", and reloads what it shows.
func liveEvents(ev Events, done <-chan struct{}) fiber.Handler {
	return func(c *fiber.Ctx) error {
		msgs := make(chan busMessage, 1024)
		var overflowed atomic.Bool
		push := func(topic string, payload []byte) {
			select {
			case msgs <- busMessage{topic, append([]byte(nil), payload...)}:
			default:
				overflowed.Store(true)
			}
		}
		var stops []func()
		for _, filter := range []string{"NICO/#", "slipway/#"} {
			stop, err := ev.Watch(filter, push)
			if err != nil {
				for _, s := range stops {
					s()
				}
				return err
			}
			stops = append(stops, stop)
		}
		c.Set(fiber.HeaderContentType, "text/event-stream")
		c.Set(fiber.HeaderCacheControl, "no-cache")
		c.Set("X-Accel-Buffering", "no")
		c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
			defer func() {
				for _, s := range stops {
					s()
				}
			}()
			streamEvents(w, msgs, &overflowed, done)
		})
		return nil
	}
}

// streamEvents writes until the client goes or the server stops.
func streamEvents(w *bufio.Writer, msgs <-chan busMessage, overflowed *atomic.Bool, done <-chan struct{}) {
	fmt.Fprint(w, "retry: 2000\n: connected\n\n")
	if w.Flush() != nil {
		return
	}
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-done:
			return
		case m := <-msgs:
			if overflowed.Swap(false) {
				fmt.Fprint(w, "event: overflow\ndata: {}\n\n")
			}
			writeEvent(w, m)
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
		}
		if w.Flush() != nil {
			return // the client went away
		}
	}
}

func writeEvent(w *bufio.Writer, m busMessage) {
	message := json.RawMessage(m.payload)
	if len(m.payload) == 0 || !json.Valid(m.payload) {
		message = json.RawMessage("null") // a cleared retained message: the thing is gone
	}
	data, _ := json.Marshal(struct {
		Topic   string          `json:"topic"`
		Message json.RawMessage `json:"message"`
	}{m.topic, message})
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", eventKind(m.topic), data)
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
