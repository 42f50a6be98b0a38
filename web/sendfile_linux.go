package web

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendfileChunk bounds one sendfile(2) call. The call is made without
// telling Go's scheduler (below), so it holds its processor for as long as
// the kernel copies: a megabyte from the page cache is about a tenth of a
// millisecond.
const sendfileChunk = 1 << 20

// sendFile copies a file (or the part of it an io.LimitedReader allows, as
// fasthttp's Range answers hand over) to a TCP connection by sendfile(2)
// on the non-blocking socket, each call a raw system call. Go's own
// sendfile enters the scheduler's syscall state, and any call that
// outlasts the scheduler's 20 µs tick has its processor handed to another
// thread: with 100 clients that was 30 thread switches a response against
// nginx's 6, and the share of two cores nginx did not spend. A call on a
// non-blocking socket never waits for the network (it copies what the send
// buffer takes and says EAGAIN, when the poller waits instead); it can wait
// for the disk when the file is not in the page cache, which for boot files
// read by every machine lasts one read. handled is false when the source is
// not a file or the kernel refuses sendfile for it before anything is
// written: the caller copies some other way.
func sendFile(dst syscall.Conn, r io.Reader) (written int64, handled bool, err error) {
	remain := int64(1<<63 - 1)
	lr, limited := r.(*io.LimitedReader)
	if limited {
		r, remain = lr.R, lr.N
	}
	file, offset := sendfileSource(r)
	if file == nil || remain <= 0 {
		return 0, false, nil
	}
	src, err := file.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	out, err := dst.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var callErr error
	copyAll := func(outFD uintptr, inFD uintptr) bool {
		for remain > 0 {
			n, _, errno := unix.RawSyscall6(unix.SYS_SENDFILE, outFD, inFD, uintptr(unsafe.Pointer(offset)), uintptr(min(remain, sendfileChunk)), 0, 0)
			switch {
			case errno == unix.EINTR:
				continue
			case errno == unix.EAGAIN:
				return false // the poller waits until the socket takes more
			case errno != 0:
				callErr = os.NewSyscallError("sendfile", errno)
				return true
			case n == 0:
				remain = 0 // the file ended
				return true
			}
			written += int64(n)
			remain -= int64(n)
		}
		return true
	}
	controlErr := src.Control(func(inFD uintptr) {
		err = out.Write(func(outFD uintptr) bool { return copyAll(outFD, inFD) })
	})
	if limited {
		lr.N -= written
	}
	if err == nil {
		err = controlErr
	}
	if err == nil {
		err = callErr
	}
	if written == 0 && isUnsupported(err) {
		return 0, false, nil
	}
	return written, true, err
}

// sendfileSource is the file r reads and where sendfile(2) is to keep the
// position: nil for the descriptor's own, which the kernel moves.
func sendfileSource(r io.Reader) (*os.File, *int64) {
	switch f := r.(type) {
	case *os.File:
		return f, nil
	case *positionedFile:
		return f.file, &f.pos
	}
	return nil, nil
}

// setCork corks or uncorks a connection's socket and says whether it is
// corked now; a socket that refuses is only slower.
func setCork(c net.Conn, on bool) (corked bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	value := 0
	if on {
		value = 1
	}
	_ = raw.Control(func(fd uintptr) { corked = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, value) == nil })
	return corked && on
}

// isUnsupported says the kernel cannot sendfile this pair at all (a file
// system without it, say), which a plain copy can still serve.
func isUnsupported(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP)
}
