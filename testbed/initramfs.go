package testbed

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// InitramfsFile is one file of an initramfs: its contents come from Source
// (a host path) or Data.
type InitramfsFile struct {
	Source string
	Data   []byte
	Mode   os.FileMode
}

// WriteInitramfs writes a gzip-compressed newc cpio archive holding files
// (archive path → file) and the directories they need, as the kernel
// unpacks it into its initial root.
func WriteInitramfs(w io.Writer, files map[string]InitramfsFile) error {
	gz := gzip.NewWriter(w)
	cw := &cpioWriter{w: gz, ino: 1}
	dirs := map[string]bool{}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
		for d := parentDir(name); d != ""; d = parentDir(d) {
			dirs[d] = true
		}
	}
	dirList := make([]string, 0, len(dirs))
	for d := range dirs {
		dirList = append(dirList, d)
	}
	sort.Strings(dirList) // parents sort before children
	for _, d := range dirList {
		if err := cw.entry(d, 0o040755, nil); err != nil {
			return err
		}
	}
	sort.Strings(names)
	for _, name := range names {
		f := files[name]
		data := f.Data
		if f.Source != "" {
			var err error
			if data, err = os.ReadFile(f.Source); err != nil {
				return fmt.Errorf("initramfs %s: %w", name, err)
			}
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := cw.entry(name, 0o100000|uint32(mode.Perm()), data); err != nil {
			return err
		}
	}
	if err := cw.entry("TRAILER!!!", 0, nil); err != nil {
		return err
	}
	return gz.Close()
}

func parentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return ""
	}
	return p[:i]
}

// cpioWriter writes the "newc" format the kernel's initramfs unpacker reads.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	n   int64
}

func (c *cpioWriter) entry(name string, mode uint32, data []byte) error {
	c.ino++
	nlink := 1
	if mode&0o040000 != 0 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	if err := c.write([]byte(hdr + name + "\x00")); err != nil {
		return err
	}
	if err := c.pad(); err != nil {
		return err
	}
	if err := c.write(data); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) write(b []byte) error {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return err
}

func (c *cpioWriter) pad() error {
	if rem := c.n % 4; rem != 0 {
		return c.write(make([]byte, 4-rem))
	}
	return nil
}
