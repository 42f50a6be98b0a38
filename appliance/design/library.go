package design

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// RefPrefix marks a reference to a design uploaded to this box:
// "slipway:<name>".
const RefPrefix = "slipway:"

// ErrUnknown: no design is uploaded by that name.
var ErrUnknown = errors.New("no design by that name")

// RefError is a design reference this box cannot read: it names the
// reference and what it accepts.
type RefError struct {
	Ref    string
	Reason string
}

func (e *RefError) Error() string {
	return fmt.Sprintf("design_ref %q: %s (give http(s)://…, deckhand+http(s)://…, or %s<name> for a design uploaded to this box)", e.Ref, e.Reason, RefPrefix)
}

// Library keeps uploaded designs as files (<name>.yaml) and fetches the
// others, and remote boot action assets, over HTTP.
type Library struct {
	// Dir holds the uploaded designs.
	Dir *os.Root
	// Client fetches designs and assets by URL; nil means a client with a
	// 30 s timeout.
	Client *http.Client
	// Profiles are the box's boot profiles, which designs may name.
	Profiles []string
}

var designName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// CheckName says whether name can name an uploaded design.
func CheckName(name string) error {
	if !designName.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("design name %q: use letters, digits, '.', '_' and '-' (at most 128)", name)
	}
	return nil
}

// Put parses text and keeps it as name, replacing what was there, unless
// it is not YAML documents at all; a design with problems is kept (the
// problems come back), so that it can be validated and fixed in place.
func (l *Library) Put(name string, text []byte) (*Design, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	d, err := Parse(text, l.Profiles)
	if err != nil {
		return nil, err
	}
	// Written whole, then renamed: a crash leaves the old design or the new.
	tmp := name + ".yaml.tmp"
	if err := l.Dir.WriteFile(tmp, text, 0o640); err != nil {
		return nil, fmt.Errorf("store design %s: %w", name, err)
	}
	if err := l.Dir.Rename(tmp, name+".yaml"); err != nil {
		return nil, fmt.Errorf("store design %s: %w", name, err)
	}
	return d, nil
}

// Text is an uploaded design's YAML.
func (l *Library) Text(name string) ([]byte, error) {
	if CheckName(name) != nil {
		return nil, fmt.Errorf("design %q: %w", name, ErrUnknown)
	}
	b, err := l.Dir.ReadFile(name + ".yaml")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("design %q: %w", name, ErrUnknown)
	}
	return b, err
}

// Delete forgets an uploaded design.
func (l *Library) Delete(name string) error {
	if CheckName(name) != nil {
		return fmt.Errorf("design %q: %w", name, ErrUnknown)
	}
	err := l.Dir.Remove(name + ".yaml")
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("design %q: %w", name, ErrUnknown)
	}
	return err
}

// Names are the uploaded designs, sorted.
func (l *Library) Names() ([]string, error) {
	entries, err := fs.ReadDir(l.Dir.FS(), ".")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".yaml"); ok && e.Type().IsRegular() {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Load reads and parses the design ref names.
func (l *Library) Load(ctx context.Context, ref string) (*Design, error) {
	text, err := l.read(ctx, ref)
	if err != nil {
		return nil, err
	}
	d, err := Parse(text, l.Profiles)
	if err != nil {
		return nil, fmt.Errorf("design_ref %q: %w", ref, err)
	}
	return d, nil
}

func (l *Library) read(ctx context.Context, ref string) ([]byte, error) {
	if name, ok := strings.CutPrefix(ref, RefPrefix); ok {
		return l.Text(strings.TrimPrefix(name, "//"))
	}
	url := strings.TrimPrefix(ref, "deckhand+")
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, &RefError{Ref: ref, Reason: "this box reads designs over HTTP or from its own library"}
	}
	b, err := l.Fetch(ctx, url)
	if err != nil {
		return nil, &RefError{Ref: ref, Reason: err.Error()}
	}
	return b, nil
}

// Fetch reads url, up to MaxSize; anything but 200 is an error.
func (l *Library) Fetch(ctx context.Context, url string) ([]byte, error) {
	client := l.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("GET %s: more than %d bytes", url, MaxSize)
	}
	return b, nil
}
