package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipway/slipway/store"
)

// USM's release states.
const (
	StateUploading    = "uploading"
	StateUploadFailed = "upload-failed"
	StateAvailable    = "available"
	StateUnavailable  = "unavailable"
	StateDeploying    = "deploying"
	StateDeployed     = "deployed"
	StateRemoving     = "removing"
	StateCommitted    = "committed"
)

// ShowStates are the states GET /v1/release?show= filters by; USM ignores
// any other value.
var ShowStates = []string{StateAvailable, StateUnavailable, StateDeployed, StateRemoving, StateCommitted, StateDeploying}

// deletable are the states a release may be deleted in.
var deletable = []string{StateAvailable, StateUnavailable, StateUploadFailed}

// Release is a release kept on the box.
type Release struct {
	Manifest
	State     string
	Signer    string // the fingerprint of the key that signed it
	SHA256    string // of the uploaded archive
	Size      int64
	CreatedAt time.Time
}

// Refusal is an operation USM refuses (its 406), in USM's words.
type Refusal string

func (r Refusal) Error() string { return string(r) }

// ErrNotFound: no release by that id.
var ErrNotFound = errors.New("release not found")

// Config is what a Library works with.
type Config struct {
	// Dir holds the releases, one directory each (<data_dir>/assets/releases:
	// served to the hosts that boot them).
	Dir string
	// Staging holds uploads being checked, outside the served tree and on
	// the same file system as Dir.
	Staging string
	DB      *store.Store
	Commit  *store.Committer
	Keys    *Keyring
	// MaxSize bounds one uploaded file (usm.max_upload_size).
	MaxSize int64
	Log     *slog.Logger
}

// Library is the releases on the box.
type Library struct {
	cfg Config
}

// NewLibrary opens the library, creating its directories; an upload a
// crash interrupted is removed.
func NewLibrary(cfg Config) (*Library, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := os.RemoveAll(cfg.Staging); err != nil {
		return nil, fmt.Errorf("releases: clear interrupted uploads: %w", err)
	}
	for _, d := range []string{cfg.Dir, cfg.Staging} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("releases: %w", err)
		}
	}
	return &Library{cfg: cfg}, nil
}

// Dir is where the releases' files are.
func (l *Library) Dir() string { return l.cfg.Dir }

// Releases lists the releases as USM filters them: show, when it is one of
// ShowStates, keeps that state; otherwise release, when set, keeps the
// releases whose MM.mm occurs in it. They come by version, then id.
func (l *Library) Releases(ctx context.Context, show, rel string) ([]Release, error) {
	rows, err := l.cfg.DB.Releases(ctx)
	if err != nil {
		return nil, err
	}
	var out []Release
	for _, row := range rows {
		r, err := fromRow(row)
		if err != nil {
			return nil, err
		}
		switch {
		case slices.Contains(ShowStates, show) && r.State != show:
			continue
		case !slices.Contains(ShowStates, show) && rel != "" && !strings.Contains(rel, r.MajorMinor()):
			continue
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Release) int { return compareVersions(a.SWVersion, b.SWVersion) })
	return out, nil
}

// Release reads one release; ErrNotFound if there is none.
func (l *Library) Release(ctx context.Context, id string) (Release, error) {
	row, err := l.cfg.DB.Release(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Release{}, fmt.Errorf("release %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Release{}, err
	}
	return fromRow(row)
}

// Delete removes releases, files and record, each in a state USM allows;
// nothing is removed unless all can be. It returns USM's info text.
func (l *Library) Delete(ctx context.Context, ids []string) (string, error) {
	for _, id := range ids {
		r, err := l.Release(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			return "", Refusal(fmt.Sprintf("Release %s can not be found", id))
		case err != nil:
			return "", err
		case !slices.Contains(deletable, r.State):
			return "", Refusal(fmt.Sprintf("Release %s is not ready to be deleted", id))
		case r.Unremovable:
			return "", Refusal(fmt.Sprintf("Release %s is not removable", id))
		}
	}
	// The records go in one commit: all of them, or none.
	if err := l.cfg.Commit.Do(ctx, func(tx *store.Tx) error {
		for _, id := range ids {
			if err := tx.DeleteRelease(id); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return "", err
	}
	var info strings.Builder
	for _, id := range ids {
		if err := os.RemoveAll(filepath.Join(l.cfg.Dir, id)); err != nil {
			l.cfg.Log.Warn("release deleted, but its files were not all removed", "release_id", id, "error", err)
		}
		l.cfg.Log.Info("release deleted", "release_id", id)
		fmt.Fprintf(&info, "%s has been deleted\n", id)
	}
	return info.String(), nil
}

func fromRow(row store.Release) (Release, error) {
	r := Release{State: row.State, Signer: row.Signer, SHA256: row.SHA256, Size: row.Size, CreatedAt: row.CreatedAt}
	if err := json.Unmarshal([]byte(row.Manifest), &r.Manifest); err != nil {
		return r, fmt.Errorf("stored release %s: %w", row.ID, err)
	}
	return r, nil
}

// compareVersions orders MM.mm.pp numerically.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			return x - y
		}
	}
	return len(as) - len(bs)
}
