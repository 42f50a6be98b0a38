package release

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// An ISO 9660 image, read here rather than with a library: the readers
// at hand loop for ever or overflow their stack on a crafted image, and a
// release's reader must fail cleanly on anything. What a release needs is
// small: the primary volume's directory tree, Rock Ridge names (xorriso
// and genisoimage -R write them) and modes, and file extents.

const (
	isoSector = 2048
	isoMagic  = "CD001"
	// Bounds on what an image may make the reader do.
	isoMaxDepth     = 32
	isoMaxFiles     = 100000
	isoMaxDirExtent = 16 << 20 // a directory's bytes
	isoMaxCEReads   = 64       // Rock Ridge continuation areas per record
	isoMaxCELength  = 8 * isoSector
)

var errNotISO = errors.New("not a readable ISO 9660 image")

func isISO(f io.ReaderAt) bool {
	b := make([]byte, len(isoMagic))
	_, err := f.ReadAt(b, 16*isoSector+1)
	return err == nil && bytes.Equal(b, []byte(isoMagic))
}

// isoRecord is a directory record, with what Rock Ridge adds to it.
type isoRecord struct {
	lba, length uint32
	dir         bool
	multiExtent bool
	ident       []byte // the ISO 9660 identifier
	name        string // Rock Ridge's, else from ident
	mode        os.FileMode
	hasMode     bool
	symlink     bool
}

// isoImage reads an image within its size.
type isoImage struct {
	r    io.ReaderAt
	size int64
	skip int // SUSP bytes to skip in every system use field (the SP entry's)
}

func (m *isoImage) read(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off+int64(n) > m.size {
		return nil, fmt.Errorf("%w: an extent at byte %d runs past the image's %d bytes", errNotISO, off, m.size)
	}
	b := make([]byte, n)
	if _, err := m.r.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("%w: %v", errNotISO, err)
	}
	return b, nil
}

// unpackISO extracts an ISO 9660 image into root: files and directories
// only, at most limit bytes.
func unpackISO(f *os.File, root *os.Root, limit int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	m := &isoImage{r: f, size: st.Size()}
	top, err := m.rootRecord()
	if err != nil {
		return err
	}
	w := isoWalk{m: m, root: root, limit: limit, seen: map[uint32]bool{}}
	return w.dir(top, "", 0)
}

// rootRecord finds the primary volume descriptor's root directory, and
// the SUSP skip its "." record's SP entry gives.
func (m *isoImage) rootRecord() (isoRecord, error) {
	for s := int64(16); s < 64; s++ {
		vd, err := m.read(s*isoSector, isoSector)
		if err != nil {
			return isoRecord{}, err
		}
		if !bytes.Equal(vd[1:6], []byte(isoMagic)) {
			return isoRecord{}, fmt.Errorf("%w: volume descriptor %d is not ISO 9660", errNotISO, s)
		}
		switch vd[0] {
		case 255: // terminator
			return isoRecord{}, fmt.Errorf("%w: no primary volume", errNotISO)
		case 1: // primary
			root, err := m.record(vd[156 : 156+34])
			if err != nil {
				return root, err
			}
			return root, m.readSUSPSkip(root)
		}
	}
	return isoRecord{}, fmt.Errorf("%w: no volume descriptor terminator", errNotISO)
}

// readSUSPSkip reads the SP entry of the root's "." record, if any.
func (m *isoImage) readSUSPSkip(root isoRecord) error {
	sec, err := m.read(int64(root.lba)*isoSector, isoSector)
	if err != nil {
		return err
	}
	n := int(sec[0])
	if n < 34 || n > len(sec) {
		return fmt.Errorf("%w: the root directory's first record is %d bytes", errNotISO, n)
	}
	su := systemUse(sec[:n])
	if len(su) >= 7 && string(su[0:2]) == "SP" && su[4] == 0xBE && su[5] == 0xEF {
		m.skip = int(su[6])
	}
	return nil
}

// systemUse is a record's system use field.
func systemUse(rec []byte) []byte {
	start := 33 + int(rec[32])
	if rec[32]%2 == 0 {
		start++ // padding after an even-length identifier
	}
	if start >= len(rec) {
		return nil
	}
	return rec[start:]
}

// record decodes one directory record, Rock Ridge included.
func (m *isoImage) record(rec []byte) (isoRecord, error) {
	if len(rec) < 34 || int(rec[0]) > len(rec) || 33+int(rec[32]) > len(rec) {
		return isoRecord{}, fmt.Errorf("%w: a directory record is cut short", errNotISO)
	}
	r := isoRecord{lba: binary.LittleEndian.Uint32(rec[2:6]), length: binary.LittleEndian.Uint32(rec[10:14]),
		dir: rec[25]&0x02 != 0, multiExtent: rec[25]&0x80 != 0, ident: rec[33 : 33+int(rec[32])]}
	su := systemUse(rec)
	if m.skip < len(su) {
		if err := m.rockRidge(su[m.skip:], &r); err != nil {
			return r, err
		}
	}
	if r.name == "" {
		r.name = plainName(r.ident, r.dir)
	}
	return r, nil
}

// rockRidge reads the NM (name), PX (mode) and SL (symbolic link) entries
// of a system use field, following continuation areas (CE) a bounded
// number of times.
func (m *isoImage) rockRidge(su []byte, r *isoRecord) error {
	var name []byte
	for reads := 0; ; {
		var next []byte
		for len(su) >= 4 {
			n := int(su[2])
			if n < 4 || n > len(su) {
				break // malformed: the rest is ignored, as SUSP says for short tails
			}
			e := su[:n]
			switch string(e[0:2]) {
			case "NM":
				if n >= 5 && e[4]&0x06 == 0 { // not "." or ".."
					name = append(name, e[5:]...)
				}
			case "PX":
				if n >= 8 {
					r.mode, r.hasMode = posixMode(binary.LittleEndian.Uint32(e[4:8])), true
				}
			case "SL":
				r.symlink = true
			case "CE":
				if n >= 28 {
					ce, err := m.continuation(e)
					if err != nil {
						return err
					}
					next = ce
				}
			}
			su = su[n:]
		}
		if next == nil {
			break
		}
		if reads++; reads > isoMaxCEReads {
			return fmt.Errorf("%w: Rock Ridge continuation areas chain more than %d times", errNotISO, isoMaxCEReads)
		}
		su = next
	}
	r.name = string(name)
	return nil
}

func (m *isoImage) continuation(e []byte) ([]byte, error) {
	block, off, length := binary.LittleEndian.Uint32(e[4:8]), binary.LittleEndian.Uint32(e[12:16]), binary.LittleEndian.Uint32(e[20:24])
	if length > isoMaxCELength {
		return nil, fmt.Errorf("%w: a Rock Ridge continuation area of %d bytes", errNotISO, length)
	}
	return m.read(int64(block)*isoSector+int64(off), int(length))
}

// posixMode maps Rock Ridge's st_mode to Go's file mode type bits.
func posixMode(mode uint32) os.FileMode {
	perm := os.FileMode(mode & 0o777)
	switch mode & 0o170000 {
	case 0o040000:
		return perm | os.ModeDir
	case 0o100000:
		return perm
	case 0o120000:
		return perm | os.ModeSymlink
	case 0o020000:
		return perm | os.ModeDevice | os.ModeCharDevice
	case 0o060000:
		return perm | os.ModeDevice
	case 0o010000:
		return perm | os.ModeNamedPipe
	}
	return perm | os.ModeSocket
}

// plainName is an ISO 9660 identifier as a file name: the version and a
// trailing dot dropped, lower-cased as Linux shows them.
func plainName(ident []byte, dir bool) string {
	s := string(ident)
	if !dir {
		s, _, _ = strings.Cut(s, ";")
		s = strings.TrimSuffix(s, ".")
	}
	return strings.ToLower(s)
}

// entries reads a directory's records, but "." and "..".
func (m *isoImage) entries(d isoRecord) ([]isoRecord, error) {
	if d.length > isoMaxDirExtent {
		return nil, fmt.Errorf("%w: a directory claims %d bytes", errNotISO, d.length)
	}
	data, err := m.read(int64(d.lba)*isoSector, int(d.length))
	if err != nil {
		return nil, err
	}
	var out []isoRecord
	for s := 0; s < len(data); s += isoSector {
		sec := data[s:min(s+isoSector, len(data))]
		for i := 0; i < len(sec); {
			n := int(sec[i])
			if n == 0 {
				break // the rest of the sector is padding
			}
			if n < 34 || i+n > len(sec) {
				return nil, fmt.Errorf("%w: a directory record crosses its sector", errNotISO)
			}
			r, err := m.record(sec[i : i+n])
			if err != nil {
				return nil, err
			}
			i += n
			if len(r.ident) == 1 && (r.ident[0] == 0 || r.ident[0] == 1) {
				continue // "." and ".."
			}
			out = append(out, r)
		}
	}
	return out, nil
}

type isoWalk struct {
	m            *isoImage
	root         *os.Root
	limit, total int64
	files        int
	seen         map[uint32]bool // directories by extent: a loop is refused
}

func (w *isoWalk) dir(d isoRecord, at string, depth int) error {
	if depth > isoMaxDepth {
		return fmt.Errorf("%w: directories nest deeper than %d", errNotISO, isoMaxDepth)
	}
	if w.seen[d.lba] {
		return fmt.Errorf("%w: directory %q loops back", errNotISO, at)
	}
	w.seen[d.lba] = true
	children, err := w.m.entries(d)
	if err != nil {
		return err
	}
	for _, c := range children {
		if w.files++; w.files > isoMaxFiles {
			return fmt.Errorf("the image holds more than %d files", isoMaxFiles)
		}
		name := path.Join(at, c.name)
		if c.name == "" || strings.Contains(c.name, "/") || !insidePath(name) {
			return fmt.Errorf("image member %q is outside the release", name)
		}
		switch {
		case c.symlink || c.hasMode && c.mode&(os.ModeSymlink|os.ModeDevice|os.ModeNamedPipe|os.ModeSocket) != 0:
			return fmt.Errorf("image member %q is a link or a device: a release holds only files and directories", name)
		case c.dir:
			if err := w.root.MkdirAll(name, 0o755); err != nil {
				return err
			}
			if err := w.dir(c, name, depth+1); err != nil {
				return err
			}
		case c.multiExtent:
			return fmt.Errorf("image member %q spans several extents (over 4 GiB): not supported", name)
		default:
			if w.total += int64(c.length); w.total > w.limit {
				return fmt.Errorf("the release unpacks to more than %d bytes", w.limit)
			}
			off := int64(c.lba) * isoSector
			if off+int64(c.length) > w.m.size {
				return fmt.Errorf("%w: %s runs past the image's end", errNotISO, name)
			}
			if err := extractFile(w.root, name, io.NewSectionReader(w.m.r, off, int64(c.length))); err != nil {
				return err
			}
		}
	}
	return nil
}
