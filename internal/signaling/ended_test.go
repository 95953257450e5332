package signaling

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
)

// joinHoldEngine holds Join until released and records the calls it got.
type joinHoldEngine struct {
	entered chan struct{}
	release chan struct{}

	mu    sync.Mutex
	calls []string
}

func (e *joinHoldEngine) record(c string) {
	e.mu.Lock()
	e.calls = append(e.calls, c)
	e.mu.Unlock()
}

func (e *joinHoldEngine) Join(context.Context, ids.SessionID, match.Prefs) error {
	close(e.entered)
	<-e.release
	e.record("join")
	return nil
}

func (e *joinHoldEngine) End(context.Context, ids.SessionID, match.Reason) error {
	e.record("end")
	return nil
}

func (*joinHoldEngine) Next(context.Context, ids.SessionID, match.Prefs) error { return nil }
func (*joinHoldEngine) Leave(context.Context, ids.SessionID) error             { return nil }
func (*joinHoldEngine) SetConnected(context.Context, ids.SessionID, bool) error {
	return nil
}
func (*joinHoldEngine) Report(context.Context, ids.SessionID) (match.Reported, error) {
	return match.Reported{}, match.ErrNotChatting
}
func (*joinHoldEngine) State(context.Context, ids.SessionID) (match.State, error) {
	return match.Idle, nil
}

// A session that ends while its join is on the way to the engine must not
// stay in the engine (where it could be matched, rule 7).
func TestJoinRacingEndLeavesNoSession(t *testing.T) {
	eng := &joinHoldEngine{entered: make(chan struct{}), release: make(chan struct{})}
	h := New(Options{Engine: eng})
	_, dial := serve(t, h)
	ws := dial("")
	w := readType(t, ws, "welcome")
	id, _ := w["session"].(string)
	_ = ws.WriteJSON(map[string]any{"type": "join"})
	select {
	case <-eng.entered:
	case <-time.After(2 * time.Second):
		t.Fatal("join never reached the engine")
	}
	h.end(h.lookup(ids.SessionID(id)), match.ReasonDisconnected, "test") // while the join is held
	close(eng.release)

	deadline := time.Now().Add(2 * time.Second)
	for {
		eng.mu.Lock()
		calls := append([]string(nil), eng.calls...)
		eng.mu.Unlock()
		if len(calls) >= 3 && calls[len(calls)-1] == "end" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine calls %v: the ended session was left in the engine by its join", calls)
		}
		time.Sleep(5 * time.Millisecond) // polling the recorded calls, bounded by the deadline
	}
}
