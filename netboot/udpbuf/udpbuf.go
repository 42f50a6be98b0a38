package udpbuf

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Size is the receive buffer asked for: room for about ten thousand
// requests waiting to be read.
const Size = 16 << 20

// Grow asks for a Size receive buffer on fd, forcing it past
// net.core.rmem_max when the process may.
func Grow(fd int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, Size) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, Size)
	}
}

// GrowConn is Grow for an open connection.
func GrowConn(c syscall.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("receive buffer: %w", err)
	}
	if err := raw.Control(func(fd uintptr) { Grow(int(fd)) }); err != nil {
		return fmt.Errorf("receive buffer: %w", err)
	}
	return nil
}

// Of reads c's receive buffer as the kernel set it (twice what was asked,
// for its bookkeeping).
func Of(c syscall.Conn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	size, serr := 0, error(nil)
	if err := raw.Control(func(fd uintptr) { size, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) }); err != nil {
		return 0, err
	}
	return size, serr
}
