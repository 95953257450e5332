package websocket

import (
	"encoding/binary"
	"errors"

	"github.com/gobwas/ws"
)

// Close sends a close frame with code and reason (cut to fit a control
// frame) and closes the socket, without waiting for the peer's answer: the
// connection is over for this side either way. Only the first Close or
// Drop acts. It waits at most about a second (for a batch being written),
// so call it without holding locks that Source.Next takes.
func (c *Conn) Close(code int, reason string) {
	if !c.closing.CompareAndSwap(nil, &closeCause{code: code, err: ErrClosed}) {
		return
	}
	_ = c.writeControl(ws.OpClose, closeBody(code, reason))
	c.shutdown()
}

// Drop closes the socket without a close frame, for a peer that is gone
// or too slow to be written to; err becomes End.Err. It never blocks, so it
// may be called under any lock. It reports whether it closed c (false: c
// was closed already).
func (c *Conn) Drop(err error) bool {
	if !c.closing.CompareAndSwap(nil, &closeCause{err: err}) {
		return false
	}
	c.shutdown()
	return true
}

// closeBody is a close frame's payload: the code and as much of reason as
// fits in a control frame.
func closeBody(code int, reason string) []byte {
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 125), uint16(code))
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return append(b, reason...)
}

// shutdown closes the socket. A polled connection with no callback running
// has nobody to notice, so its end is reported here (on a new goroutine:
// the caller may hold locks that OnClose takes).
func (c *Conn) shutdown() {
	c.closeNet()
	if c.rstate.CompareAndSwap(readIdle, readDone) {
		go c.ended(ErrClosed)
	}
}

// closeNet unregisters and closes the socket.
func (c *Conn) closeNet() {
	if c.desc != nil {
		c.desc.Remove()
	}
	_ = c.nc.Close()
}

// ended reports the end of the connection to the handler, once, after
// closing the socket. err is why reading stopped.
func (c *Conn) ended(err error) {
	c.rstate.Store(readDone)
	c.endOnce.Do(func() {
		c.closing.CompareAndSwap(nil, &closeCause{err: err})
		c.closeNet()
		cc := c.closing.Load()
		e := End{Sent: cc.code, Err: cc.err}
		var ce *CloseError
		if errors.As(err, &ce) {
			e.Err = err
		}
		c.h.OnClose(e)
	})
}
