package broker

import (
	"context"
	"log/slog"
)

// mochiLog is the handler mochi-mqtt logs through. mochi's listeners log a
// client connection that ended with an error as a WARN with no message at
// all ("" plus the error): an empty line an operator cannot read, which
// every shutdown printed. Those records are said in words, at debug level:
// a client going away is the client's business.
type mochiLog struct{ slog.Handler }

func (h mochiLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "" {
		named := slog.NewRecord(r.Time, slog.LevelDebug, "MQTT client connection ended", r.PC)
		r.Attrs(func(a slog.Attr) bool { named.AddAttrs(a); return true })
		r = named
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h mochiLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return mochiLog{h.Handler.WithAttrs(attrs)}
}

func (h mochiLog) WithGroup(name string) slog.Handler { return mochiLog{h.Handler.WithGroup(name)} }
