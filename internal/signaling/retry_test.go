package signaling

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
)

// flakyEngine is the in-memory engine behind a Redis that is slow for a
// while: End and SetConnected fail with ErrOverloaded the first fails
// times each, without doing anything.
type flakyEngine struct {
	*match.Memory
	mu    sync.Mutex
	fails map[string]int
}

func (e *flakyEngine) fail(op string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fails[op] > 0 {
		e.fails[op]--
		return fmt.Errorf("%w: redis %s: timeout", match.ErrOverloaded, op)
	}
	return nil
}

func (e *flakyEngine) End(ctx context.Context, id ids.SessionID, r match.Reason) error {
	if err := e.fail("end"); err != nil {
		return err
	}
	return e.Memory.End(ctx, id, r)
}

func (e *flakyEngine) SetConnected(ctx context.Context, id ids.SessionID, c bool) error {
	if err := e.fail("connected"); err != nil {
		return err
	}
	return e.Memory.SetConnected(ctx, id, c)
}

func waitRetries(t *testing.T, h *Hub) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.RetriesPending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d engine calls still retried after 5 s", h.RetriesPending())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A client that closes while the engine cannot be reached still ends its
// session in the engine once it can: its partner is told, and is not left
// chatting with a ghost.
func TestEndIsRetried(t *testing.T) {
	h := New(Options{})
	eng := &flakyEngine{fails: map[string]int{"end": 3}}
	eng.Memory = match.NewMemory(match.MemoryConfig{}, h)
	h.UseEngine(eng)
	_, dial := serve(t, h)
	a, b, _ := matchedPair(t, dial)
	_ = a.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	if f := readType(t, b, "peer_left"); f["reason"] != "left" {
		t.Fatalf("partner got %v, want peer_left left", f)
	}
	waitRetries(t, h)
}

// A session that came back while the engine could not be told stays
// matchable: the engine learns it is connected once it can be reached.
func TestSetConnectedIsRetried(t *testing.T) {
	h := New(Options{})
	eng := &flakyEngine{fails: map[string]int{}}
	eng.Memory = match.NewMemory(match.MemoryConfig{}, h)
	h.UseEngine(eng)
	_, dial := serve(t, h)
	a := dial("")
	token := readType(t, a, "welcome")["resumeToken"].(string)
	_ = a.WriteJSON(map[string]any{"type": "join"})
	readType(t, a, "waiting")
	_ = a.NetConn().Close() // dropped: the engine is told it is away
	deadline := time.Now().Add(2 * time.Second)
	for h.Online() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the drop was not noticed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	eng.mu.Lock()
	eng.fails["connected"] = 3 // the resume's "connected" fails three times
	eng.mu.Unlock()
	a = dial("?resume=" + token)
	readType(t, a, "welcome")
	b := dial("")
	readType(t, b, "welcome")
	_ = b.WriteJSON(map[string]any{"type": "join"})
	readType(t, b, "waiting")
	readType(t, a, "matched") // matched once the engine knows a is back
	readType(t, b, "matched")
	waitRetries(t, h)
}
