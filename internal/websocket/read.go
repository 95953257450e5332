package websocket

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"

	"github.com/gobwas/ws"

	"github.com/strangerchat/stranger/internal/netpoll"
)

// readState is where a polled connection's reading is. The poller's
// callback reads only from readIdle; whoever moves the connection to
// readDone reports its end.
type readState = int32

const (
	readIdle    readState = iota // armed: waiting for the poller
	readReading                  // a goroutine reads (or Start has not run yet)
	readDone                     // ended
)

// register puts c under the poller, if there is one and c's socket can be
// polled. The callback does not read until Start arms it.
func (c *Conn) register(p *netpoll.Poller, log *slog.Logger) {
	c.rstate.Store(readReading) // until Start: closers leave the end to it
	if p == nil {
		return
	}
	pc, ok := c.nc.(netpoll.Conn)
	if !ok {
		return
	}
	d, err := p.Add(pc, c.onReadable)
	if err != nil {
		if log != nil {
			log.Warn("netpoll: reading with a goroutine instead", "err", err)
		}
		return
	}
	c.desc = d
}

// Start begins reading c. Every connection that was started ends with one
// call of Handler.OnClose.
func (c *Conn) Start() {
	if c.desc == nil {
		go c.readLoop()
		return
	}
	c.rearm()
}

// onReadable is the poller's callback: it reads the frames that arrived,
// then re-arms the poller.
func (c *Conn) onReadable() {
	if !c.rstate.CompareAndSwap(readIdle, readReading) {
		return
	}
	br := readBufs.Get().(*bufio.Reader)
	br.Reset(c.nc)
	err := c.readFrames(br, false)
	br.Reset(nil)
	readBufs.Put(br)
	if err != nil {
		c.ended(err)
		return
	}
	c.rearm()
}

// rearm hands c back to the poller (level-triggered: bytes that are
// already waiting call back at once).
func (c *Conn) rearm() {
	c.rstate.Store(readIdle)
	if err := c.desc.Resume(); err != nil {
		// Closed meanwhile; if the closer already saw readIdle, it
		// reported the end and this is a no-op.
		if c.rstate.CompareAndSwap(readIdle, readDone) {
			c.ended(err)
		}
	}
}

// readLoop reads frames until the connection ends (no poller).
func (c *Conn) readLoop() {
	br := bufio.NewReaderSize(c.nc, 512)
	c.ended(c.readFrames(br, true))
}

// readFrames reads and handles frames from br. Unless all is set it stops,
// without blocking, once br holds no more bytes and no message is half
// read: the poller calls again when more arrive. A message split over
// several frames is read to its end, blocking for the rest.
func (c *Conn) readFrames(br *bufio.Reader, all bool) error {
	var hdr [ws.MaxHeaderSize - 2]byte
	var ctl [125]byte
	for {
		fh, err := ws.ReadHeaderBuffer(br, hdr[:])
		if err != nil {
			if errors.Is(err, ws.ErrHeaderLengthMSB) || errors.Is(err, ws.ErrHeaderLengthUnexpected) {
				return c.protocolError("bad frame length")
			}
			return err
		}
		st := ws.StateServerSide
		if c.msg != nil {
			st |= ws.StateFragmented
		}
		if err := ws.CheckHeader(fh, st); err != nil {
			return c.protocolError(err.Error())
		}
		switch {
		case fh.OpCode.IsControl():
			// CheckHeader: final and at most 125 bytes.
			p := ctl[:fh.Length]
			if _, err := io.ReadFull(br, p); err != nil {
				return err
			}
			ws.Cipher(p, fh.Mask, 0)
			if err := c.control(fh.OpCode, p); err != nil {
				return err
			}
		case fh.OpCode == ws.OpBinary:
			c.Close(CloseUnsupported, "binary messages are not supported")
			return ErrBinary
		case fh.OpCode == ws.OpContinuation && c.msg == nil:
			return c.protocolError("continuation frame without a message")
		default: // text, or a continuation of one
			if fh.OpCode == ws.OpText && c.msg != nil {
				return c.protocolError("new message inside a fragmented one")
			}
			if c.msg == nil {
				c.msg = msgBufs.Get().(*[]byte)
			}
			m := *c.msg
			n := len(m)
			if int64(n)+fh.Length > c.max {
				c.Close(CloseTooLarge, "")
				return ErrTooLarge
			}
			m = slices.Grow(m, int(fh.Length))[:n+int(fh.Length)]
			*c.msg = m
			if _, err := io.ReadFull(br, m[n:]); err != nil {
				return err
			}
			ws.Cipher(m[n:], fh.Mask, 0)
			if fh.Fin {
				bp := c.msg
				c.msg = nil
				c.h.OnMessage(m)
				if cap(m) <= 8<<10 {
					*bp = m[:0]
					msgBufs.Put(bp)
				}
				if cc := c.closing.Load(); cc != nil {
					// The handler closed or dropped the connection: what
					// else arrived is not for it.
					return cc.err
				}
			}
		}
		if !all && c.msg == nil && br.Buffered() == 0 {
			return nil
		}
	}
}

// control handles a ping, pong or close frame from the peer.
func (c *Conn) control(op ws.OpCode, p []byte) error {
	switch op {
	case ws.OpPing:
		if err := c.writeControl(ws.OpPong, p); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
	case ws.OpPong:
		c.h.OnPong(p)
	case ws.OpClose:
		code := CloseNoStatus // RFC 6455 §7.1.5
		var echo []byte
		switch {
		case len(p) == 1:
			return c.protocolError("close frame of one byte")
		case len(p) >= 2:
			code = int(binary.BigEndian.Uint16(p))
			echo = p[:2]
		}
		// The echo completes the handshake the peer started (§5.5.1).
		_ = c.writeControl(ws.OpClose, echo)
		return &CloseError{Code: code}
	}
	return nil
}

func (c *Conn) protocolError(msg string) error {
	c.Close(CloseProtocolError, msg)
	return ErrProtocol
}
