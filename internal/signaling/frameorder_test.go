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

// holdLeave is the in-memory engine with the first Leave held after it has
// been carried out (the engine goroutine preempted before the hub updates
// its own view of the session).
type holdLeave struct {
	*match.Memory
	entered, release chan struct{}
	once             sync.Once
}

func (e *holdLeave) Leave(ctx context.Context, id ids.SessionID) error {
	err := e.Memory.Leave(ctx, id)
	e.once.Do(func() {
		close(e.entered)
		<-e.release
	})
	return err
}

// A resume that takes a session over while a frame of its old connection is
// still being carried out must wait for it: otherwise welcome.state is taken
// half-way (chatting, after the leave has ended the chat), and frames of the
// new connection interleave with the old one's and are overwritten by it.
func TestResumeWaitsForFrameInFlight(t *testing.T) {
	h := New(Options{})
	eng := &holdLeave{Memory: match.NewMemory(match.MemoryConfig{}, h), entered: make(chan struct{}), release: make(chan struct{})}
	h.UseEngine(eng)
	url, dial := serve(t, h)
	read := func(ws *websocket.Conn, want string) map[string]any { t.Helper(); return readType(t, ws, want) }
	a, b := dial(""), dial("")
	token, _ := read(a, "welcome")["resumeToken"].(string)
	read(b, "welcome")
	_ = a.WriteJSON(map[string]any{"type": "join"})
	read(a, "waiting")
	_ = b.WriteJSON(map[string]any{"type": "join"})
	read(b, "waiting")
	read(b, "matched")
	read(a, "matched")
	_ = a.WriteJSON(map[string]any{"type": "leave", "seq": 1})
	select {
	case <-eng.entered:
	case <-time.After(2 * time.Second):
		t.Fatal("leave never reached the engine")
	}
	read(b, "peer_left")

	welcome := make(chan map[string]any, 1)
	go func() {
		ws, _, err := websocket.DefaultDialer.Dial(url+"?resume="+token+"&last=2", nil)
		if err != nil {
			welcome <- map[string]any{"error": err.Error()}
			return
		}
		t.Cleanup(func() { _ = ws.Close() })
		var f map[string]any
		_ = ws.SetReadDeadline(time.Now().Add(2 * time.Second))
		_ = ws.ReadJSON(&f)
		welcome <- f
	}()
	// Give a resume that does not wait the time to answer.
	select {
	case w := <-welcome:
		close(eng.release)
		t.Fatalf("resume answered while the leave was still being carried out: %v", w)
	case <-time.After(300 * time.Millisecond):
	}
	close(eng.release)
	w := <-welcome
	if w["type"] != "welcome" || w["resumed"] != true || w["state"] != "idle" {
		t.Fatalf("welcome %v, want resumed in state idle (the leave was seq 1, lastSeq %v)", w, w["lastSeq"])
	}
}

// A connection upgraded before a drain began but attached after the drain
// looked for connections (here: a resume waiting for a frame in flight) is
// still closed with 1012, not left open on a node that is shutting down.
func TestDrainClosesConnectionAttachedDuringIt(t *testing.T) {
	h := New(Options{})
	eng := &holdLeave{Memory: match.NewMemory(match.MemoryConfig{}, h), entered: make(chan struct{}), release: make(chan struct{})}
	h.UseEngine(eng)
	url, dial := serve(t, h)
	a := dial("")
	token, _ := readType(t, a, "welcome")["resumeToken"].(string)
	_ = a.WriteJSON(map[string]any{"type": "join"})
	readType(t, a, "waiting")
	_ = a.WriteJSON(map[string]any{"type": "leave", "seq": 2})
	select {
	case <-eng.entered:
	case <-time.After(2 * time.Second):
		t.Fatal("leave never reached the engine")
	}
	// The resume is upgraded, then waits in attach for the held leave.
	ws, _, err := websocket.DefaultDialer.Dial(url+"?resume="+token+"&last=2", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	h.Drain() // closes a, the session's connection at this moment
	close(eng.release)
	if code := closeCode(t, ws); code != websocket.CloseServiceRestart {
		t.Fatalf("the resumed connection was closed with %d, want 1012", code)
	}
}
