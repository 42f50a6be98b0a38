//go:build !linux

package web

import (
	"io"
	"net"
	"syscall"
)

// sendFile leaves the copy to the connection's own ReadFrom off Linux.
func sendFile(syscall.Conn, io.Reader) (int64, bool, error) { return 0, false, nil }

// setCork does nothing off Linux.
func setCork(net.Conn, bool) bool { return false }
