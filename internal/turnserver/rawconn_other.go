//go:build !linux

package turnserver

import "net"

// wrapUDP is the identity outside Linux: the raw-syscall socket path
// (rawconn_linux.go) only pays off where the runtime's syscall bookkeeping
// was measured to dominate, and it needs Linux's recvfrom/sendto.
func wrapUDP(c net.PacketConn) net.PacketConn { return c }
