package signaling

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// serve runs h on a test HTTP server and returns its ws:// URL and a dialer
// for that URL plus an optional query (e.g. "?resume=TOKEN"); connections
// close at the end of the test.
func serve(t testing.TB, h *Hub) (string, func(query string) *websocket.Conn) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	return url, func(query string) *websocket.Conn {
		t.Helper()
		ws, _, err := websocket.DefaultDialer.Dial(url+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ws.Close() })
		return ws
	}
}

// readType reads the next frame of ws, failing unless its type is want.
func readType(t testing.TB, ws *websocket.Conn, want string) map[string]any {
	t.Helper()
	var f map[string]any
	_ = ws.SetReadDeadline(time.Now().Add(2 * time.Second))
	if err := ws.ReadJSON(&f); err != nil {
		t.Fatalf("reading %s: %v", want, err)
	}
	if f["type"] != want {
		t.Fatalf("got %v, want %s", f, want)
	}
	return f
}

// matchedPair dials two clients and joins both (each is told waiting
// first); it returns them once both have their matched, and the room.
func matchedPair(t testing.TB, dial func(query string) *websocket.Conn) (a, b *websocket.Conn, room string) {
	t.Helper()
	a, b = dial(""), dial("")
	readType(t, a, "welcome")
	readType(t, b, "welcome")
	_ = a.WriteJSON(map[string]any{"type": "join"})
	readType(t, a, "waiting")
	_ = b.WriteJSON(map[string]any{"type": "join"})
	readType(t, b, "waiting")
	room, _ = readType(t, a, "matched")["room"].(string)
	readType(t, b, "matched")
	return a, b, room
}
