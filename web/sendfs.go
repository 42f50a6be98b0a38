package web

import (
	"errors"
	"io"
	"io/fs"
	"os"
)

// RegularFiles is the fs.FS a file server hands its files from: names
// resolve inside root (nothing outside it is reachable, symlinks
// included), anything but a regular file is "not found" (a directory is
// never listed nor redirected to), and each file keeps its position in
// memory. Its Stat looks a name up without taking a descriptor (fstatat),
// so a system out of them can still tell a missing file from one it
// cannot open now. A Range answer seeks to the range and back again after; with the
// position in memory neither is a system call, and sendFile passes the
// position to sendfile(2) itself.
func RegularFiles(root *os.Root) fs.FS { return regularFiles{root.FS()} }

type regularFiles struct{ fsys fs.FS }

func (r regularFiles) Open(name string) (fs.File, error) {
	f, err := r.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	file, ok := f.(*os.File)
	if !ok {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.ErrUnsupported}
	}
	if _, err := regular(file.Stat()); err != nil {
		file.Close()
		return nil, err
	}
	return &positionedFile{file: file}, nil
}

// Stat is fs.StatFS's: a name that is not a regular file is not found.
func (r regularFiles) Stat(name string) (fs.FileInfo, error) { return regular(fs.Stat(r.fsys, name)) }

// regular passes a regular file's info on and makes anything else "not found".
func regular(info fs.FileInfo, err error) (fs.FileInfo, error) {
	if err == nil && !info.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: info.Name(), Err: fs.ErrNotExist}
	}
	return info, err
}

// positionedFile reads a file at a position it keeps itself. It does not
// embed *os.File on purpose: the file's own WriteTo and ReadFrom would
// use the descriptor's position, not this one.
type positionedFile struct {
	file *os.File
	pos  int64
}

func (f *positionedFile) Stat() (fs.FileInfo, error) { return f.file.Stat() }
func (f *positionedFile) Close() error               { return f.file.Close() }

func (f *positionedFile) Read(p []byte) (int, error) {
	n, err := f.file.ReadAt(p, f.pos)
	f.pos += int64(n)
	if n > 0 && errors.Is(err, io.EOF) {
		err = nil // the next Read says it
	}
	return n, err
}

func (f *positionedFile) Seek(offset int64, whence int) (int64, error) {
	pos := offset
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		pos += f.pos
	case io.SeekEnd:
		info, err := f.file.Stat()
		if err != nil {
			return f.pos, err
		}
		pos += info.Size()
	default:
		return f.pos, &fs.PathError{Op: "seek", Path: f.file.Name(), Err: fs.ErrInvalid}
	}
	if pos < 0 {
		return f.pos, &fs.PathError{Op: "seek", Path: f.file.Name(), Err: fs.ErrInvalid}
	}
	f.pos = pos
	return pos, nil
}
