package release

import (
	"io"
	"log/slog"
)

// progressStep is how often a long upload says how far it has come.
const progressStep = 256 << 20

// progress logs an upload's progress every progressStep bytes.
type progress struct {
	r    io.Reader
	name string
	log  *slog.Logger
	n    int64
	next int64
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.next == 0 {
		p.next = progressStep
	}
	if p.n >= p.next {
		p.log.Info("release upload in progress", "file", p.name, "mib_received", p.n>>20)
		p.next += progressStep
	}
	return n, err
}
