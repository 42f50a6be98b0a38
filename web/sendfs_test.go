package web

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestRegularFilesOpensOnlyRegularFilesInsideTheRoot(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kernel"), []byte("0123456789"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "initrd"), []byte("abc"), 0o644)
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("secret"), 0o600)
	os.Symlink(outside, filepath.Join(dir, "escape"))
	os.Symlink("kernel", filepath.Join(dir, "inside"))
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	fsys := RegularFiles(root)
	for _, tc := range []struct {
		name string
		want string // "" when it must not open
	}{
		{"kernel", "0123456789"},
		{"sub/initrd", "abc"},
		{"inside", "0123456789"},
		{"sub", ""},
		{".", ""},
		{"escape", ""},
		{"../secret", ""},
		{"missing", ""},
	} {
		got, err := fs.ReadFile(fsys, tc.name)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s opened: %q", tc.name, got)
		case tc.want != "" && (err != nil || string(got) != tc.want):
			t.Errorf("%s = %q, %v; want %q", tc.name, got, err, tc.want)
		}
		if info, err := fs.Stat(fsys, tc.name); (err == nil) != (tc.want != "") || err == nil && info.Size() != int64(len(tc.want)) {
			t.Errorf("Stat(%s) = %v, %v; it opens: %v", tc.name, info, err, tc.want != "")
		}
	}
	if _, err := fsys.Open("sub"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a directory opened with %v, want not found", err)
	}
}

func TestPositionedFileSeeksAndReadsWithoutMovingTheDescriptor(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("0123456789"), 0o644)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	opened, err := RegularFiles(root).Open("f")
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	f := opened.(*positionedFile)
	buf := make([]byte, 4)
	for _, step := range []struct {
		offset  int64
		whence  int
		wantPos int64
		wantErr bool
		read    string // what a 4-byte Read gives after the seek
	}{
		{offset: 2, whence: io.SeekStart, wantPos: 2, read: "2345"},
		{offset: 1, whence: io.SeekCurrent, wantPos: 7, read: "789"},
		{offset: -3, whence: io.SeekEnd, wantPos: 7, read: "789"},
		{offset: 0, whence: io.SeekEnd, wantPos: 10, read: ""},
		{offset: -1, whence: io.SeekStart, wantPos: 10, wantErr: true, read: ""},
		{offset: 0, whence: 42, wantPos: 10, wantErr: true, read: ""},
	} {
		pos, err := f.Seek(step.offset, step.whence)
		if pos != step.wantPos || (err != nil) != step.wantErr {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d, error %v", step.offset, step.whence, pos, err, step.wantPos, step.wantErr)
		}
		n, err := f.Read(buf)
		if string(buf[:n]) != step.read || (n == 0 && err != io.EOF) || (n > 0 && err != nil) {
			t.Fatalf("Read after Seek(%d, %d) = %q, %v; want %q", step.offset, step.whence, buf[:n], err, step.read)
		}
	}
	if pos, _ := f.file.Seek(0, io.SeekCurrent); pos != 0 {
		t.Errorf("the descriptor moved to %d", pos)
	}
}
