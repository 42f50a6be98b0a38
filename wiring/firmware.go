package wiring

import (
	"fmt"
	"os"

	"github.com/slipway/slipway/appliance/firmware"
	"github.com/slipway/slipway/appliance/task"
)

// firmwareService is the image library and the update engine as one, for
// the API.
type firmwareService struct {
	*firmware.Library
	*firmware.Updater
}

// startFirmware opens the image library and builds the updater, whose
// tasks the engine runs (and resumes) with the serve loops.
func (a *Appliance) startFirmware(p *parts, serverURL string) error {
	lib, err := firmware.NewLibrary(a.cfg.FirmwareDir(), p.db, p.commit)
	if err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	if p.firmwareRoot, err = os.OpenRoot(lib.Dir()); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	p.updater = firmware.NewUpdater(firmware.Config{Tasks: p.tasks, Reader: task.Reader{DB: p.db}, Images: lib, BMCs: p.bmcs, Machines: p.inventory,
		Log:      a.log.With("part", "firmware"),
		ImageURL: func(id string) string { return serverURL + "/firmware/" + firmware.FileName(id) }})
	p.firmware = firmwareService{lib, p.updater}
	return nil
}
