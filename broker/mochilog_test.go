package broker

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestMochiLogNamesEmptyMessages(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level
		log   func(*slog.Logger)
		want  string // "" for nothing written
	}{
		{"empty WARN at warn level: dropped", slog.LevelWarn, func(l *slog.Logger) { l.Warn("", "error", errors.New("EOF")) }, ""},
		{"empty WARN at debug level: named", slog.LevelDebug, func(l *slog.Logger) { l.Warn("", "error", errors.New("EOF")) },
			`level=DEBUG msg="MQTT client connection ended" part=mqtt error=EOF`},
		{"a real warning stays", slog.LevelWarn, func(l *slog.Logger) { l.Warn("listener failed", "error", "x") }, `level=WARN msg="listener failed" part=mqtt`},
		{"info below warn: dropped", slog.LevelWarn, func(l *slog.Logger) { l.Info("started") }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			base := slog.NewTextHandler(&out, &slog.HandlerOptions{Level: tt.level})
			tt.log(slog.New(mochiLog{base}).With("part", "mqtt"))
			got := out.String()
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Fatalf("logged %q, want %q", got, tt.want)
			}
		})
	}
}
