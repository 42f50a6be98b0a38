package image

import (
	"os"
	"strings"
	"testing"

	"github.com/slipway/slipway/appliance/config"
)

// The configuration a new stick starts with is valid as it is, and serves
// the default LAN on the only wired NIC, configuring it itself.
func TestShippedConfigIsValid(t *testing.T) {
	cfg, err := config.Load("slipway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LAN.Interface != config.InterfaceAuto || !cfg.LAN.Configure || cfg.LANPrefix().String() != "10.88.0.1/24" {
		t.Errorf("lan = %+v", cfg.LAN)
	}
	if cfg.TFTP.Root != "/usr/share/slipway/tftp" || cfg.Image.StateDevice != "" || cfg.DataDir != "/var/lib/slipway" {
		t.Errorf("tftp.root %q, image.state_device %q, data_dir %q", cfg.TFTP.Root, cfg.Image.StateDevice, cfg.DataDir)
	}
}

// Every script the start-up runs is executable and a shell script, and
// inittab names only scripts that exist.
func TestStartupScriptsExist(t *testing.T) {
	inittab, err := os.ReadFile("rootfs/etc/inittab")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(inittab), "\n") {
		f := strings.SplitN(line, ":", 4)
		if strings.HasPrefix(line, "#") || len(f) < 4 {
			continue
		}
		prog := strings.TrimPrefix(strings.Fields(f[3])[0], "-")
		if strings.HasPrefix(prog, "/usr/lib/slipway-image/") {
			st, err := os.Stat("rootfs" + prog)
			if err != nil || st.Mode()&0o111 == 0 {
				t.Errorf("inittab runs %s: %v (mode %v)", prog, err, st)
			}
		}
	}
}
