// Package netpoll tells when a connection has bytes to read, so a server
// with many idle connections needs no goroutine parked in Read for each.
//
// A goroutine blocked in Read costs its stack (2–8 KiB) for as long as the
// connection lives; most signaling connections are idle most of the time.
// With a Poller the owner of a connection registers a callback instead; the
// callback runs on a new goroutine once bytes arrive, reads what it can
// without blocking for more, and re-arms the registration with Resume. The
// Go runtime keeps its own poller for the same descriptor (it is used when a
// read does block, e.g. for the rest of a large frame); this one only says
// when to start reading.
package netpoll

import (
	"errors"
	"syscall"
)

// ErrUnsupported: this system has no poller; read with a goroutine per
// connection instead.
var ErrUnsupported = errors.New("netpoll: not supported on this system")

// Conn is what a Poller watches: a connection that exposes its descriptor
// (*net.TCPConn does).
type Conn interface {
	SyscallConn() (syscall.RawConn, error)
}
