package cloudinit

import (
	"os"
	"path/filepath"
	"sync"
	"text/template"
	"time"
)

// templateCache keeps each user-data template parsed, keyed by its file.
// A site booting at once asks for its user-data thousands of times a
// minute: reading and parsing the same file for each cost a descriptor
// and the parse every time, and a box short of descriptors could not
// open it at all. A template is read again when its size or modification
// time changes, which stat tells without a descriptor.
type templateCache struct {
	mu     sync.Mutex
	byFile map[string]parsedTemplate
}

type parsedTemplate struct {
	size int64
	mod  time.Time
	t    *template.Template
	err  error // a template that does not parse stays refused until it changes
}

// get is file's template, parsed.
func (c *templateCache) get(file string) (*template.Template, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	p, ok := c.byFile[file]
	c.mu.Unlock()
	if ok && p.size == st.Size() && p.mod.Equal(st.ModTime()) {
		return p.t, p.err
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err // not kept: a shortage of descriptors passes
	}
	p = parsedTemplate{size: st.Size(), mod: st.ModTime()}
	p.t, p.err = template.New(filepath.Base(file)).Option("missingkey=error").Parse(string(src))
	c.mu.Lock()
	c.byFile[file] = p
	c.mu.Unlock()
	return p.t, p.err
}
