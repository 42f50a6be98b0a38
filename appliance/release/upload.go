package release

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/slipway/slipway/store"
)

// Upload is one upload request's files, staged until Import checks them.
// Close removes whatever Import did not keep.
type Upload struct {
	l     *Library
	dir   string
	names []string // basenames, in the order received
}

// Imported is what became of one uploaded file: a release file gives the
// release's id and sw_version; a signature gives neither.
type Imported struct {
	File      string
	ID        string
	SWVersion string
}

// archiveSuffixes are the release files Slipway takes: tar archives,
// gzip-compressed or not. StarlingX's CLI uploads only .iso, .sig and
// .patch files, and a StarlingX patch is a tar archive too: a release
// named .patch goes through it unmodified.
var archiveSuffixes = []string{".tar.gz", ".tgz", ".tar", ".patch", ".iso"}

// signatureSuffixes are detached signatures, armored or binary.
var signatureSuffixes = []string{".sig", ".asc"}

// NewUpload starts an upload.
func (l *Library) NewUpload() (*Upload, error) {
	dir, err := os.MkdirTemp(l.cfg.Staging, "upload-")
	if err != nil {
		return nil, fmt.Errorf("releases: stage an upload: %w", err)
	}
	return &Upload{l: l, dir: dir}, nil
}

// Close removes the staged files.
func (u *Upload) Close() error { return os.RemoveAll(u.dir) }

// Add stages one file, by its base name, from r: at most the library's
// MaxSize bytes, with its progress logged.
func (u *Upload) Add(name string, r io.Reader) error {
	base := path.Base(strings.ReplaceAll(name, "\\", "/"))
	if base == "." || base == "/" || base == ".." || slices.Contains(u.names, base) {
		return Refusal(fmt.Sprintf("%q is not a file name this upload can take (empty, or given twice)", name))
	}
	f, err := os.OpenFile(filepath.Join(u.dir, base), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("releases: stage %s: %w", base, err)
	}
	defer f.Close()
	n, err := io.Copy(f, &progress{r: io.LimitReader(r, u.l.cfg.MaxSize+1), name: base, log: u.l.cfg.Log})
	if err != nil {
		return fmt.Errorf("releases: receive %s: %w", base, err)
	}
	if n > u.l.cfg.MaxSize {
		return Refusal(fmt.Sprintf("%s is larger than the %d bytes usm.max_upload_mib allows", base, u.l.cfg.MaxSize))
	}
	u.names = append(u.names, base)
	return f.Close()
}

// AddLocal stages files already on the box (USM's --local upload); if one
// is missing, none is staged and the refusal names them all, as USM does.
func (u *Upload) AddLocal(paths ...string) error {
	var missing []string
	for _, p := range paths {
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() || !filepath.IsAbs(p) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return Refusal("File(s) not found on the active controller: " + strings.Join(missing, ", "))
	}
	for _, p := range paths {
		if err := u.addFile(p); err != nil {
			return err
		}
	}
	return nil
}

func (u *Upload) addFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return Refusal(fmt.Sprintf("cannot read %s: %v", p, err))
	}
	defer f.Close()
	return u.Add(p, f)
}

// Import checks every staged release (its signature, then its contents),
// and keeps those that pass. Its error says what failed; the releases
// that passed are kept all the same, as USM does.
func (u *Upload) Import(ctx context.Context) ([]Imported, error) {
	if len(u.names) == 0 {
		return nil, Refusal("No files uploaded")
	}
	var out []Imported
	var problems []string
	for _, name := range u.names {
		switch {
		case hasSuffix(name, signatureSuffixes):
			if !u.signs(name) {
				problems = append(problems, fmt.Sprintf("%s: a signature without the release it signs", name))
			}
			out = append(out, Imported{File: name})
		case hasSuffix(name, archiveSuffixes):
			im, err := u.importOne(ctx, name)
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			out = append(out, im)
		default:
			problems = append(problems, fmt.Sprintf("%s: not a release: upload an .iso, .patch, .tar, .tar.gz or .tgz with its detached signature (.sig or .asc)", name))
		}
	}
	if len(problems) > 0 {
		return out, Refusal(strings.Join(problems, "\n"))
	}
	return out, nil
}

// signature is the staged signature of a release file: <file>.sig,
// <file>.asc, or the same with the archive suffix dropped.
func (u *Upload) signature(name string) (string, bool) {
	stem := name
	for _, s := range archiveSuffixes {
		if strings.HasSuffix(name, s) {
			stem = strings.TrimSuffix(name, s)
			break
		}
	}
	for _, base := range []string{name, stem} {
		for _, s := range signatureSuffixes {
			if slices.Contains(u.names, base+s) {
				return base + s, true
			}
		}
	}
	return "", false
}

// signs says whether a signature has its release file in the upload.
func (u *Upload) signs(sig string) bool {
	for _, name := range u.names {
		if s, ok := u.signature(name); ok && s == sig && hasSuffix(name, archiveSuffixes) {
			return true
		}
	}
	return false
}

func (u *Upload) importOne(ctx context.Context, name string) (Imported, error) {
	sigName, ok := u.signature(name)
	if !ok {
		return Imported{}, fmt.Errorf("%s: no detached signature: upload %s.sig with it (gpg --detach-sign %s)", name, name, name)
	}
	staged := filepath.Join(u.dir, name)
	signer, sum, size, err := u.verify(staged, filepath.Join(u.dir, sigName))
	if err != nil {
		return Imported{}, fmt.Errorf("%s: %w", name, err)
	}
	unpacked := staged + ".d"
	if err := unpack(staged, unpacked, 4*u.l.cfg.MaxSize); err != nil {
		return Imported{}, fmt.Errorf("%s: %w", name, err)
	}
	m, err := readManifest(unpacked)
	if err != nil {
		return Imported{}, fmt.Errorf("%s: %w", name, err)
	}
	if err := u.keep(ctx, m, unpacked, store.Release{Signer: signer, SHA256: sum, Size: size}); err != nil {
		return Imported{}, fmt.Errorf("%s: %w", name, err)
	}
	u.l.cfg.Log.Info("release uploaded", "release_id", m.ReleaseID, "sw_version", m.SWVersion, "signer", signer, "bytes", size)
	return Imported{File: name, ID: m.ReleaseID, SWVersion: m.SWVersion}, nil
}

// verify checks the file's signature and measures it.
func (u *Upload) verify(file, sigFile string) (signer, sum string, size int64, err error) {
	sig, err := os.ReadFile(sigFile)
	if err != nil {
		return "", "", 0, err
	}
	f, err := os.Open(file)
	if err != nil {
		return "", "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(f, h)}
	if signer, err = u.l.cfg.Keys.Verify(counted, sig); err != nil {
		return "", "", 0, err
	}
	return signer, hex.EncodeToString(h.Sum(nil)), counted.n, nil
}

// keep moves an unpacked release into the library and records it.
func (u *Upload) keep(ctx context.Context, m Manifest, unpacked string, rec store.Release) error {
	if _, err := u.l.Release(ctx, m.ReleaseID); err == nil {
		return fmt.Errorf("release %s is already on this box: delete it first to upload it again", m.ReleaseID)
	}
	manifest, err := json.Marshal(m)
	if err != nil {
		return err
	}
	dest := filepath.Join(u.l.cfg.Dir, m.ReleaseID)
	if err := os.RemoveAll(dest); err != nil { // files a crash left without a record
		return err
	}
	if err := os.Rename(unpacked, dest); err != nil {
		return fmt.Errorf("move the release into place: %w", err)
	}
	rec.ID, rec.State, rec.SWVersion, rec.Manifest = m.ReleaseID, StateAvailable, m.SWVersion, string(manifest)
	if err := u.l.cfg.Commit.Do(ctx, func(tx *store.Tx) error { return tx.CreateRelease(rec) }); err != nil {
		_ = os.RemoveAll(dest)
		return err
	}
	return nil
}

// readManifest reads and checks an unpacked release's manifest, and that
// the boot files it names are regular files of the release.
func readManifest(dir string) (Manifest, error) {
	text, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return Manifest{}, errNoManifest
	}
	if err != nil {
		return Manifest{}, err
	}
	m, err := ParseManifest(text)
	if err != nil {
		return m, err
	}
	for field, p := range map[string]string{"boot.kernel": m.Boot.Kernel, "boot.initrd": m.Boot.Initrd, "boot.rootfs": m.Boot.RootFS} {
		if p == "" {
			continue
		}
		if st, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p))); err != nil || !st.Mode().IsRegular() {
			return m, fmt.Errorf("%s: %s names %s, which the release does not carry as a file", ManifestName, field, p)
		}
	}
	return m, nil
}

// unpack extracts a release (an ISO 9660 image, or a tar archive,
// gzip-compressed or not) into dir: regular files and directories only,
// every path inside dir, at most limit bytes.
func unpack(archive, dir string, limit int64) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if isISO(f) {
		return unpackISO(f, root, limit)
	}
	return unpackTar(f, root, limit)
}

func unpackTar(f *os.File, root *os.Root, limit int64) error {
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("not a gzip archive: %w", err)
		}
		defer gz.Close()
		r = gz
	}
	tr := tar.NewReader(r)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not a readable tar archive (truncated?): %w", err)
		}
		name := strings.TrimPrefix(path.Clean(strings.TrimPrefix(h.Name, "./")), "/")
		if name == "." {
			continue
		}
		if !insidePath(name) {
			return fmt.Errorf("archive member %q is outside the release", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if total += h.Size; total > limit {
				return fmt.Errorf("the release unpacks to more than %d bytes", limit)
			}
			if err := extractFile(root, name, tr); err != nil {
				return err
			}
		default:
			return fmt.Errorf("archive member %q is a link or a device: a release holds only files and directories", h.Name)
		}
	}
}

func extractFile(root *os.Root, name string, r io.Reader) error {
	if d := path.Dir(name); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	out, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("archive member %s: %w", name, err)
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return fmt.Errorf("archive member %s (truncated?): %w", name, err)
	}
	return out.Close()
}

func hasSuffix(name string, suffixes []string) bool {
	return slices.ContainsFunc(suffixes, func(s string) bool { return strings.HasSuffix(name, s) })
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
