package websocket

// One connection's two directions: reading (driven by the poller, at most
// one reader at a time) and the writer (running only while its Source has
// something to send). They share one file so that a frame can be followed
// from the socket read to the socket write in one place.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"

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
// several frames is read to its end, blocking for the rest, but for at
// most the message timeout from its first frame.
func (c *Conn) readFrames(br *bufio.Reader, all bool) error {
	err := c.readMessages(br, all)
	if c.msgDeadline && errors.Is(err, os.ErrDeadlineExceeded) {
		if c.msgTimeouts != nil {
			c.msgTimeouts.Inc()
		}
		c.Close(ClosePolicyViolation, "message not completed in time")
		return ErrMessageTimeout
	}
	return err
}

// startMessage is called at the first frame of a message, whose header
// says length bytes follow. If the message is not all in br already, the
// rest must arrive within the message timeout: a read deadline says so.
// Messages that arrived whole (all a browser sends) set no deadline.
func (c *Conn) startMessage(br *bufio.Reader, fin bool, length int64) {
	if fin && int64(br.Buffered()) >= length {
		return
	}
	if err := c.nc.SetReadDeadline(time.Now().Add(c.msgTimeout)); err == nil {
		c.msgDeadline = true
	}
}

// endMessage lifts the deadline of the message just completed.
func (c *Conn) endMessage() {
	if c.msgDeadline {
		c.msgDeadline = false
		_ = c.nc.SetReadDeadline(time.Time{})
	}
}

func (c *Conn) readMessages(br *bufio.Reader, all bool) error {
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
				c.startMessage(br, fh.Fin, fh.Length)
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
				c.endMessage()
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

// Writing.

// WriteTimeout bounds one write of a batch: a peer that does not read for
// that long is dropped rather than waited for.
const WriteTimeout = 10 * time.Second

// MaxBatch is how many messages the writer takes in one batch; Batch.Add
// reports when it is reached, so a long backlog is written in slices and a
// due ping is not held back behind all of it.
const MaxBatch = 64

// Batch is what the writer sends in one write(2): text messages, then
// optionally a ping.
type Batch struct {
	msgs    [][]byte
	ping    []byte // nil: no ping; else its payload, in pingBuf
	pingBuf [125]byte
}

// Add appends a text message (its payload, unframed); the writer reads it
// after Next returns, so it must not change until the next call of Next.
// Add reports whether the batch has room for more.
func (b *Batch) Add(msg []byte) (more bool) {
	b.msgs = append(b.msgs, msg)
	return len(b.msgs) < MaxBatch
}

// Ping asks for a ping after the batch's messages, with payload (at most
// 125 bytes; the rest is cut) for the peer to send back in its pong.
func (b *Batch) Ping(payload []byte) {
	n := copy(b.pingBuf[:], payload)
	b.ping = b.pingBuf[:n]
}

func (b *Batch) empty() bool { return len(b.msgs) == 0 && b.ping == nil }

func (b *Batch) reset() {
	clear(b.msgs) // drop the references to the user's buffers
	b.msgs = b.msgs[:0]
	b.ping = nil
}

var batches = sync.Pool{New: func() any { return &Batch{msgs: make([][]byte, 0, MaxBatch)} }}

// frameBufs hold a batch's frames while they are written.
var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// writerState is whether a writer goroutine runs, and whether it must ask
// its Source again before it may stop.
type writerState = int32

const (
	writerIdle    writerState = iota // no writer
	writerRunning                    // a writer runs; no Kick since its last Next began
	writerKicked                     // a writer runs and was kicked since: it asks again
)

// Kick tells c that its Source has something new: a writer starts unless
// one runs, in which case it asks the Source again before it stops. Kick
// never blocks, so it may be called under the locks Next takes (and must
// be called after what it announces is visible to Next).
func (c *Conn) Kick() {
	if c.closing.Load() != nil {
		return
	}
	for {
		switch c.wstate.Load() {
		case writerIdle:
			if c.wstate.CompareAndSwap(writerIdle, writerRunning) {
				go c.writeLoop()
				return
			}
		case writerRunning:
			if c.wstate.CompareAndSwap(writerRunning, writerKicked) {
				return
			}
		default: // kicked already
			return
		}
	}
}

// writeLoop writes what the Source has, batch after batch, and exits when
// it has nothing: an idle connection holds no writer.
func (c *Conn) writeLoop() {
	b := batches.Get().(*Batch)
	defer batches.Put(b)
	for {
		// From here a Kick either finds writerRunning and marks it, or
		// came before and its news is seen by the Next below.
		c.wstate.Store(writerRunning)
		b.reset()
		if c.closing.Load() == nil {
			c.src.Next(b)
		}
		if b.empty() {
			b.reset()
			if c.wstate.CompareAndSwap(writerRunning, writerIdle) {
				return
			}
			continue // kicked while asking: ask again
		}
		if err := c.writeBatch(b); err != nil {
			b.reset()
			c.Drop(err)
			c.wstate.Store(writerIdle)
			return
		}
	}
}

// writeBatch frames b's messages, and its ping after them, into one buffer
// and writes it with one write(2).
func (c *Conn) writeBatch(b *Batch) error {
	bp := frameBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	for _, m := range b.msgs {
		buf = appendFrame(buf, ws.OpText, m)
	}
	if b.ping != nil {
		buf = appendFrame(buf, ws.OpPing, b.ping)
	}
	var err error
	c.wmu.Lock()
	// Close marks the connection before it takes wmu for its close frame,
	// so a batch that gets wmu after it is not written: no message may
	// follow a close frame (RFC 6455 §5.5.1).
	if c.closing.Load() == nil {
		_ = c.nc.SetWriteDeadline(time.Now().Add(WriteTimeout))
		_, err = c.nc.Write(buf)
	}
	c.wmu.Unlock()
	if cap(buf) <= 256<<10 {
		*bp = buf[:0]
		frameBufs.Put(bp)
	}
	return err
}

// appendFrame appends one final, unmasked frame (RFC 6455 §5.2; a server
// never masks).
func appendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	n := len(payload)
	b0 := 0x80 | byte(op)
	switch {
	case n < 126:
		dst = append(dst, b0, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, b0, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, payload...)
}

// errWriterBusy: a control frame could not be written because a batch
// write held the socket for over a second.
var errWriterBusy = errors.New("websocket: writer busy")

// writeControl writes a control frame (at most 125 bytes of payload),
// waiting at most a second for a batch being written: a stuck batch ends
// at its deadline anyway, and a reader or closer must not wait that long.
func (c *Conn) writeControl(op ws.OpCode, payload []byte) error {
	deadline := time.Now().Add(time.Second)
	for !c.wmu.TryLock() {
		if time.Now().After(deadline) {
			return errWriterBusy
		}
		time.Sleep(5 * time.Millisecond)
	}
	defer c.wmu.Unlock()
	var b [2 + 125]byte
	_ = c.nc.SetWriteDeadline(deadline)
	_, err := c.nc.Write(appendFrame(b[:0], op, payload[:min(len(payload), 125)]))
	return err
}
