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

// slowMatchEngine matches the second joiner with the first and tells the
// initiator first, then — after a pause standing in for the engine's
// goroutine being preempted — the other session, all under its lock, as
// match.Memory does.
type slowMatchEngine struct {
	n     match.Notifier
	pause time.Duration

	mu      sync.Mutex
	waiting ids.SessionID
}

func (e *slowMatchEngine) Join(_ context.Context, id ids.SessionID, prefs match.Prefs) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.waiting == "" {
		e.waiting = id
		e.n.Notify(id, match.Event{Kind: match.EventWaiting})
		return nil
	}
	a := e.waiting
	e.waiting = ""
	e.n.Notify(a, match.Event{Kind: match.EventMatched, Room: "r_test", Partner: id, Initiator: true, Mode: prefs.Mode, Common: []string{}})
	time.Sleep(e.pause)
	e.n.Notify(id, match.Event{Kind: match.EventMatched, Room: "r_test", Partner: a, Mode: prefs.Mode, Common: []string{}})
	return nil
}

func (e *slowMatchEngine) State(context.Context, ids.SessionID) (match.State, error) {
	e.mu.Lock() // an engine call sees every change made before it
	defer e.mu.Unlock()
	return match.Chatting, nil
}

func (*slowMatchEngine) Next(context.Context, ids.SessionID, match.Prefs) error  { return nil }
func (*slowMatchEngine) Leave(context.Context, ids.SessionID) error              { return nil }
func (*slowMatchEngine) SetConnected(context.Context, ids.SessionID, bool) error { return nil }
func (*slowMatchEngine) End(context.Context, ids.SessionID, match.Reason) error  { return nil }
func (*slowMatchEngine) Report(context.Context, ids.SessionID) (match.Reported, error) {
	return match.Reported{}, match.ErrNotChatting
}

// The initiator answers its matched at once with an offer, while the
// partner's matched has not been applied yet. The offer must reach the
// partner, after its matched, not be dropped as a message of an old chat.
func TestRelayWhilePartnerMatchPending(t *testing.T) {
	eng := &slowMatchEngine{pause: 300 * time.Millisecond}
	h := New(Options{Engine: eng})
	eng.n = h
	_, dialQ := serve(t, h)
	dial := func() *websocket.Conn { t.Helper(); return dialQ("") }
	read := func(ws *websocket.Conn, want string) map[string]any { t.Helper(); return readType(t, ws, want) }
	a, b := dial(), dial()
	read(a, "welcome")
	read(b, "welcome")
	_ = a.WriteJSON(map[string]any{"type": "join"})
	read(a, "waiting")
	_ = b.WriteJSON(map[string]any{"type": "join"})
	read(a, "matched")
	_ = a.WriteJSON(map[string]any{"type": "signal", "data": map[string]any{"sdp": "offer"}, "room": "r_test"})
	read(b, "matched")
	if f := read(b, "signal"); f["room"] != "r_test" {
		t.Fatalf("signal %v", f)
	}
}
