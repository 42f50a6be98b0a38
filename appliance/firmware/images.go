package firmware

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/slipway/slipway/store"
)

// Library is the firmware images kept on the box.
type Library struct {
	dir    string
	db     *store.Store
	commit *store.Committer
}

// MaxImageSize bounds an upload; BMC images are tens to hundreds of MiB.
const MaxImageSize = 2 << 30

// NewLibrary keeps images in dir.
func NewLibrary(dir string, db *store.Store, commit *store.Committer) (*Library, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("firmware directory: %w", err)
	}
	return &Library{dir: dir, db: db, commit: commit}, nil
}

// Upload is an image being added and what its uploader says of it.
type Upload struct {
	Component string // firmware inventory id it is for: BMC, BIOS, …
	Version   string // the version it installs
	SHA256    string // its checksum, which the upload must match
	Filename  string
}

var (
	sha256Hex     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	componentName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// Check says what is wrong with an upload's description, before any byte
// is read.
func (u Upload) Check() error {
	var problems []string
	if !componentName.MatchString(u.Component) {
		problems = append(problems, fmt.Sprintf("component %q: name the firmware inventory member it is for, e.g. BMC or BIOS", u.Component))
	}
	if strings.TrimSpace(u.Version) == "" || len(u.Version) > 128 {
		problems = append(problems, "version: give the version the image installs")
	}
	if !sha256Hex.MatchString(strings.ToLower(u.SHA256)) {
		problems = append(problems, fmt.Sprintf("sha256 %q: give the image's SHA-256 as 64 hex digits (sha256sum prints it)", u.SHA256))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// ChecksumError is an upload whose bytes do not match its checksum.
type ChecksumError struct{ Want, Got string }

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("the image's SHA-256 is %s, not %s as given: the upload is damaged or the checksum is for another file; nothing was kept", e.Got, e.Want)
}

// Add stores an image read from r. The file is written aside, checked
// against the checksum, synced, and only then named and recorded: a
// crash or a bad upload leaves nothing half-kept.
func (l *Library) Add(ctx context.Context, u Upload, r io.Reader) (Image, error) {
	if err := u.Check(); err != nil {
		return Image{}, err
	}
	want := strings.ToLower(u.SHA256)
	tmp, err := os.CreateTemp(l.dir, ".upload-*")
	if err != nil {
		return Image{}, fmt.Errorf("firmware upload: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, MaxImageSize+1))
	if err != nil {
		return Image{}, fmt.Errorf("firmware upload: %w", err)
	}
	if n > MaxImageSize {
		return Image{}, fmt.Errorf("firmware upload: larger than %d bytes", int64(MaxImageSize))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return Image{}, &ChecksumError{Want: want, Got: got}
	}
	if err := tmp.Sync(); err != nil {
		return Image{}, fmt.Errorf("firmware upload: %w", err)
	}
	if err := os.Rename(tmp.Name(), l.Path(want)); err != nil {
		return Image{}, fmt.Errorf("firmware upload: %w", err)
	}
	im := store.FirmwareImage{ID: want, Component: u.Component, Version: strings.TrimSpace(u.Version), Size: n, Filename: filepath.Base(u.Filename)}
	if err := l.commit.Do(ctx, func(tx *store.Tx) error { return tx.PutFirmwareImage(im) }); err != nil {
		return Image{}, err
	}
	return l.Image(ctx, want)
}

// FileName is the image's name in the firmware directory (and URL).
func FileName(id string) string { return id + ".bin" }

// Path is where the image's file is.
func (l *Library) Path(id string) string { return filepath.Join(l.dir, FileName(id)) }

// Dir is the firmware directory, served read-only to BMCs.
func (l *Library) Dir() string { return l.dir }

// Image is a firmware file kept in the library.
type Image struct {
	ID        string // the SHA-256 of the file
	Component string // the firmware inventory id it applies to (BMC, BIOS…)
	Version   string
	Size      int64
	Filename  string // as uploaded
	CreatedAt time.Time
}

func imageOf(im store.FirmwareImage) Image {
	return Image{ID: im.ID, Component: im.Component, Version: im.Version, Size: im.Size, Filename: im.Filename, CreatedAt: im.CreatedAt}
}

// Images lists the images kept.
func (l *Library) Images(ctx context.Context) ([]Image, error) {
	stored, err := l.db.FirmwareImages(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Image, len(stored))
	for i, im := range stored {
		out[i] = imageOf(im)
	}
	return out, nil
}

// Image is one image's record.
func (l *Library) Image(ctx context.Context, id string) (Image, error) {
	im, err := l.db.FirmwareImage(ctx, strings.ToLower(id))
	if err != nil {
		return Image{}, err
	}
	return imageOf(im), nil
}
