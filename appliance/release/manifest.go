package release

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ManifestName is the manifest's name at the root of a release archive.
const ManifestName = "release.yaml"

// Manifest is what a release says of itself (release.yaml).
type Manifest struct {
	// ReleaseID names the release ("slipway-os-1.2.0"): letters, digits,
	// '.', '_' and '-'.
	ReleaseID string `yaml:"release_id"`
	// SWVersion is MM.mm.pp, as USM's sw_version.
	SWVersion string `yaml:"sw_version"`
	// Component is null for the platform, as in USM.
	Component *string `yaml:"component"`
	// Status is REL (default), DEV or OBS.
	Status              string `yaml:"status"`
	Unremovable         bool   `yaml:"unremovable"`
	Summary             string `yaml:"summary"`
	Description         string `yaml:"description"`
	InstallInstructions string `yaml:"install_instructions"`
	Warnings            string `yaml:"warnings"`
	// RebootRequired defaults to true: a host boots into a new release.
	RebootRequired    *bool    `yaml:"reboot_required"`
	Requires          []string `yaml:"requires"`
	Packages          []string `yaml:"packages"`
	ActivationScripts []string `yaml:"activation_scripts"`
	// Boot is what a host of this release netboots: paths inside the
	// archive.
	Boot Boot `yaml:"boot"`
}

// Boot names a release's boot files.
type Boot struct {
	Kernel string `yaml:"kernel"`
	Initrd string `yaml:"initrd"`
	// RootFS is an optional root image (squashfs, …) the kernel fetches.
	RootFS string `yaml:"rootfs"`
	// Cmdline is the kernel command line, a template as profiles' are: a
	// root image is {{.ServerURL}}/assets/releases/<release_id>/<rootfs>.
	Cmdline string `yaml:"cmdline"`
}

var (
	releaseID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)
	swVersion = regexp.MustCompile(`^[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}$`)
)

// ParseManifest reads release.yaml and checks it, naming every problem.
func ParseManifest(text []byte) (Manifest, error) {
	var m Manifest
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("%s: %w", ManifestName, err)
	}
	if m.Status == "" {
		m.Status = "REL"
	}
	if m.RebootRequired == nil {
		yes := true
		m.RebootRequired = &yes
	}
	return m, m.check()
}

func (m Manifest) check() error {
	var problems []string
	add := func(field, format string, args ...any) {
		problems = append(problems, field+": "+fmt.Sprintf(format, args...))
	}
	if !releaseID.MatchString(m.ReleaseID) {
		add("release_id", "%q is not a release id (letters, digits, '.', '_', '-'; up to 100)", m.ReleaseID)
	}
	if !swVersion.MatchString(m.SWVersion) {
		add("sw_version", "%q is not MM.mm.pp (e.g. 1.2.0)", m.SWVersion)
	}
	switch m.Status {
	case "REL", "DEV", "OBS":
	default:
		add("status", "%q is not REL, DEV or OBS", m.Status)
	}
	for _, id := range m.Requires {
		if !releaseID.MatchString(id) {
			add("requires", "%q is not a release id", id)
		}
	}
	for _, f := range []struct {
		field, path string
		required    bool
	}{{"boot.kernel", m.Boot.Kernel, true}, {"boot.initrd", m.Boot.Initrd, true}, {"boot.rootfs", m.Boot.RootFS, false}} {
		switch {
		case f.path == "" && f.required:
			add(f.field, "is required: the file, inside the release, that hosts netboot")
		case f.path != "" && !insidePath(f.path):
			add(f.field, "%q is not a relative path inside the release", f.path)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: %s", ManifestName, strings.Join(problems, "; "))
	}
	return nil
}

// MajorMinor is sw_version's MM.mm.
func (m Manifest) MajorMinor() string {
	if i := strings.LastIndex(m.SWVersion, "."); i > 0 {
		return m.SWVersion[:i]
	}
	return m.SWVersion
}

// insidePath says whether p names a file inside an archive's root.
func insidePath(p string) bool {
	return p != "" && !path.IsAbs(p) && path.Clean(p) == p && p != "." && !strings.HasPrefix(p, "../") && p != ".." &&
		!strings.Contains(p, "\\")
}

var errNoManifest = errors.New("the release has no " + ManifestName + " at its root")
