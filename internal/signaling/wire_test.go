package signaling

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/netpoll"
)

// readModes runs f against a hub that reads each connection with its own
// goroutine and against one driven by the poller (Linux), the two ways
// conn reads frames.
func readModes(t *testing.T, f func(t *testing.T, h *Hub)) {
	t.Run("goroutine", func(t *testing.T) {
		h := New(Options{})
		h.UseEngine(match.NewMemory(match.MemoryConfig{}, h))
		f(t, h)
	})
	t.Run("poller", func(t *testing.T) {
		p, err := netpoll.New()
		if errors.Is(err, netpoll.ErrUnsupported) && runtime.GOOS != "linux" {
			t.Skip("no poller on " + runtime.GOOS)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		h := New(Options{Poller: p})
		h.UseEngine(match.NewMemory(match.MemoryConfig{}, h))
		f(t, h)
	})
}

// frame is a client frame (masked, as RFC 6455 requires of clients).
func frame(op ws.OpCode, fin bool, payload string) []byte {
	return ws.MustCompileFrame(ws.MaskFrame(ws.NewFrame(op, fin, []byte(payload))))
}

func writeRaw(t *testing.T, c *websocket.Conn, frames ...[]byte) {
	t.Helper()
	var b []byte
	for _, f := range frames {
		b = append(b, f...)
	}
	if _, err := c.NetConn().Write(b); err != nil {
		t.Fatal(err)
	}
}

// welcomed serves h and returns a client connected to it, past its welcome.
func welcomed(t *testing.T, h *Hub) *websocket.Conn {
	t.Helper()
	_, dial := serve(t, h)
	c := dial("")
	readType(t, c, "welcome")
	return c
}

// closeCode reads until the server closes c and returns the close code.
func closeCode(t *testing.T, c *websocket.Conn) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

// A message split over several frames, with a ping between them, is one
// message; the ping is answered with a pong carrying its payload.
func TestWireFragmentedMessageWithPing(t *testing.T) {
	readModes(t, func(t *testing.T, h *Hub) {
		c := welcomed(t, h)
		pong := make(chan string, 1)
		c.SetPongHandler(func(data string) error { pong <- data; return nil })
		writeRaw(t, c,
			frame(ws.OpText, false, `{"type":`),
			frame(ws.OpPing, true, "hello"),
			frame(ws.OpContinuation, false, `"jo`))
		time.Sleep(50 * time.Millisecond) // the rest arrives in a later read
		writeRaw(t, c, frame(ws.OpContinuation, true, `in"}`))
		readType(t, c, "waiting") // the pong is read on the way
		select {
		case p := <-pong:
			if p != "hello" {
				t.Fatalf("pong %q, want the ping's payload", p)
			}
		case <-time.After(time.Second):
			t.Fatal("no pong for the ping")
		}
	})
}

// Several frames arriving in one read are all handled, in order.
func TestWireFramesInOneWrite(t *testing.T) {
	readModes(t, func(t *testing.T, h *Hub) {
		c := welcomed(t, h)
		writeRaw(t, c, frame(ws.OpText, true, `{"type":"join"}`), frame(ws.OpText, true, `{"type":"nope"}`))
		readType(t, c, "waiting")
		if f := readType(t, c, "error"); f["code"] != "unknown_type" {
			t.Fatalf("got %v, want unknown_type for the second frame", f)
		}
	})
}

// Frames that break RFC 6455 close the connection with 1002.
func TestWireProtocolErrors(t *testing.T) {
	cases := map[string][]byte{
		"unmasked frame":           ws.MustCompileFrame(ws.NewTextFrame([]byte(`{"type":"join"}`))),
		"continuation, no message": frame(ws.OpContinuation, true, `{}`),
		"text inside fragmented":   append(frame(ws.OpText, false, `{`), frame(ws.OpText, true, `}`)...),
		"reserved opcode":          frame(ws.OpCode(0x3), true, `x`),
		"control frame not final":  frame(ws.OpPing, false, `x`),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			readModes(t, func(t *testing.T, h *Hub) {
				c := welcomed(t, h)
				writeRaw(t, c, raw)
				if code := closeCode(t, c); code != websocket.CloseProtocolError {
					t.Fatalf("close code %d, want 1002", code)
				}
			})
		})
	}
}

// A client's close is echoed with its code, and a clean close (1000) ends
// the session at once: it is not kept for a resume.
func TestWireClientClose(t *testing.T) {
	readModes(t, func(t *testing.T, h *Hub) {
		c := welcomed(t, h)
		writeRaw(t, c, frame(ws.OpClose, true, "\x03\xe8bye"))
		if code := closeCode(t, c); code != websocket.CloseNormalClosure {
			t.Fatalf("echoed close code %d, want 1000", code)
		}
		deadline := time.Now().Add(2 * time.Second)
		for len(h.snapshot()) != 0 {
			if time.Now().After(deadline) {
				t.Fatal("the session outlived its clean close")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
