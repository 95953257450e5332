package signaling

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
)

// connEngine is an Engine that records SetConnected calls and can hold the
// first "disconnected" call until released.
type connEngine struct {
	mu       sync.Mutex
	calls    []bool
	entered  chan struct{} // closed when the held call has started
	release  chan struct{} // closing it lets the held call finish
	holdOnce sync.Once
}

func (e *connEngine) SetConnected(_ context.Context, _ ids.SessionID, connected bool) error {
	if !connected {
		held := false
		e.holdOnce.Do(func() { held = true })
		if held {
			close(e.entered)
			<-e.release
		}
	}
	e.mu.Lock()
	e.calls = append(e.calls, connected)
	e.mu.Unlock()
	return nil
}

func (e *connEngine) last() (bool, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.calls) == 0 {
		return false, 0
	}
	return e.calls[len(e.calls)-1], len(e.calls)
}

func (*connEngine) Join(context.Context, ids.SessionID, match.Prefs) error { return nil }
func (*connEngine) Next(context.Context, ids.SessionID, match.Prefs) error { return nil }
func (*connEngine) Leave(context.Context, ids.SessionID) error             { return nil }
func (*connEngine) Report(context.Context, ids.SessionID) (match.Reported, error) {
	return match.Reported{}, match.ErrNotChatting
}
func (*connEngine) End(context.Context, ids.SessionID, match.Reason) error { return nil }
func (*connEngine) State(context.Context, ids.SessionID) (match.State, error) {
	return match.Idle, nil
}

// A drop and a quick resume race to tell the engine: the drop's
// "disconnected" is still on its way when the resume's "connected" is sent.
// The engine must end up with "connected", or a waiting session would never
// be matched again.
func TestSetConnectedOrderAfterRacingResume(t *testing.T) {
	eng := &connEngine{entered: make(chan struct{}), release: make(chan struct{})}
	h := New(Options{Engine: eng})
	url, _ := serve(t, h)
	welcome := func(ws *websocket.Conn) map[string]any { t.Helper(); return readType(t, ws, "welcome") }
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, _ := welcome(ws)["resumeToken"].(string)
	_ = ws.NetConn().Close() // drop

	select {
	case <-eng.entered: // the drop's SetConnected(false) is under way, held
	case <-time.After(2 * time.Second):
		t.Fatal("the drop never reached the engine")
	}
	ws2, _, err := websocket.DefaultDialer.Dial(url+"?resume="+token, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws2.Close()
	if w := welcome(ws2); w["resumed"] != true {
		t.Fatalf("resume failed: %v", w)
	}
	close(eng.release)

	deadline := time.Now().Add(2 * time.Second)
	for {
		connected, n := eng.last()
		if connected && n >= 2 {
			return
		}
		if time.Now().After(deadline) {
			eng.mu.Lock()
			defer eng.mu.Unlock()
			t.Fatalf("SetConnected calls %v: the engine is left believing a connected session is disconnected", eng.calls)
		}
		time.Sleep(5 * time.Millisecond) // polling the recorded calls, bounded by the deadline
	}
}
