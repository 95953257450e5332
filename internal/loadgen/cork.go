package loadgen

import (
	"net"
	"sync"
)

// corkConn lets a client gather the frames of one burst (an offer and its
// candidates, typing and chat) into a single write, like TCP_CORK. It is
// off by default (--batch): a browser sends those frames separately, and
// the server's read cost per frame is part of what is measured; with it
// the load generator spends fewer syscalls and leaves more CPU to the
// server when both share a small machine.
type corkConn struct {
	net.Conn
	mu     sync.Mutex // gorilla writes control frames from the reader too
	corked bool
	buf    []byte
}

func (c *corkConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.corked {
		c.buf = append(c.buf, b...)
		c.mu.Unlock()
		return len(b), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was gathered in one write.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > 64<<10 {
		c.buf = nil // do not keep a rare big burst's buffer
	} else {
		c.buf = c.buf[:0]
	}
	return err
}
