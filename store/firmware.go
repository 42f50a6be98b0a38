package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// FirmwareImage is an image kept on the box.
type FirmwareImage struct {
	ID        string // SHA-256 of the file
	Component string
	Version   string
	Size      int64
	Filename  string
	CreatedAt time.Time
}

// PutFirmwareImage records an image; recording the same file again keeps
// the first record.
func (tx *Tx) PutFirmwareImage(im FirmwareImage) error {
	_, err := tx.exec(`INSERT INTO firmware_images (id, component, version, size, filename, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		im.ID, im.Component, im.Version, im.Size, im.Filename, tx.nowText)
	if err != nil {
		return fmt.Errorf("record firmware image %s: %w", im.ID, err)
	}
	return nil
}

// DeleteFirmwareImage forgets an image.
func (tx *Tx) DeleteFirmwareImage(id string) error {
	res, err := tx.exec(`DELETE FROM firmware_images WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete firmware image %s: %w", id, err)
	}
	return mustAffect(res, "firmware image", id)
}

const firmwareColumns = `id, component, version, size, filename, created_at`

func scanFirmwareImage(r rowScanner) (FirmwareImage, error) {
	var im FirmwareImage
	err := r.Scan(&im.ID, &im.Component, &im.Version, &im.Size, &im.Filename, storedTime{t: &im.CreatedAt})
	return im, err
}

// FirmwareImages lists the images, newest first.
func (s *Store) FirmwareImages(ctx context.Context) ([]FirmwareImage, error) {
	return queryAll(ctx, s.read, "list firmware images", scanFirmwareImage,
		`SELECT `+firmwareColumns+` FROM firmware_images ORDER BY created_at DESC, id`)
}

// FirmwareImage reads one image's record.
func (s *Store) FirmwareImage(ctx context.Context, id string) (FirmwareImage, error) {
	im, err := scanFirmwareImage(s.read.QueryRowContext(ctx, `SELECT `+firmwareColumns+` FROM firmware_images WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return im, fmt.Errorf("firmware image %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return im, fmt.Errorf("read firmware image %s: %w", id, err)
	}
	return im, nil
}
