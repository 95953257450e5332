package signaling

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// iceHub is a hub offering STUN and a TURN entry whose credential names the
// session (the shape turnserver.Credentials mints).
func iceHub() *Hub {
	h := New(Options{ICEServers: func(id ids.SessionID, now time.Time) []protocol.ICEServer {
		return []protocol.ICEServer{
			{URLs: []string{"stun:stun.test:3478"}},
			{URLs: []string{"turn:turn.test:3478"}, Username: "9999999999:" + string(id), Credential: "c"},
		}
	}})
	h.UseEngine(match.NewMemory(match.MemoryConfig{}, h))
	return h
}

func iceList(t *testing.T, v any) []map[string]any {
	t.Helper()
	raw, ok := v.([]any)
	if !ok {
		t.Fatalf("iceServers = %#v, want an array", v)
	}
	out := make([]map[string]any, len(raw))
	for i, x := range raw {
		out[i] = x.(map[string]any)
	}
	return out
}

// TestTURNCredentialsOnlyWhenMatched: protocol 1.1. welcome carries only
// STUN, however often a client connects; matched carries the TURN entry
// with a credential for the session; a resume mid-chat carries renewed
// ones in chat.iceServers, and welcome.iceServers stays without.
func TestTURNCredentialsOnlyWhenMatched(t *testing.T) {
	h := iceHub()
	_, dial := serve(t, h)
	for range 3 {
		w := readType(t, dial(""), "welcome")
		for _, s := range iceList(t, w["iceServers"]) {
			if _, ok := s["username"]; ok {
				t.Fatalf("welcome carries a credential: %v", w)
			}
		}
	}
	a, b := dial(""), dial("")
	wa := readType(t, a, "welcome")
	readType(t, b, "welcome")
	session, _ := wa["session"].(string)
	token, _ := wa["resumeToken"].(string)
	if list := iceList(t, wa["iceServers"]); len(list) != 1 || list[0]["urls"].([]any)[0] != "stun:stun.test:3478" {
		t.Fatalf("welcome.iceServers = %v, want the STUN entry", wa["iceServers"])
	}
	if wa["turn"] != true {
		t.Fatalf("welcome.turn = %v, want true (TURN comes with matched)", wa["turn"])
	}
	_ = a.WriteJSON(map[string]any{"type": "join"})
	readType(t, a, "waiting")
	_ = b.WriteJSON(map[string]any{"type": "join"})
	readType(t, b, "waiting")
	m := readType(t, a, "matched")
	list := iceList(t, m["iceServers"])
	if len(list) != 2 || list[1]["username"] != "9999999999:"+session || list[1]["credential"] != "c" {
		t.Fatalf("matched.iceServers = %v, want STUN and TURN for %s", m["iceServers"], session)
	}
	readType(t, b, "matched")

	_ = a.Close()
	ws := dial("?resume=" + token)
	w := readType(t, ws, "welcome")
	if w["resumed"] != true || w["turn"] != true {
		t.Fatalf("resume: %v", w)
	}
	for _, s := range iceList(t, w["iceServers"]) {
		if _, ok := s["username"]; ok {
			t.Fatalf("resumed welcome.iceServers carries a credential: %v", w)
		}
	}
	chat, _ := w["chat"].(map[string]any)
	if cl := iceList(t, chat["iceServers"]); len(cl) != 2 || !strings.HasSuffix(cl[1]["username"].(string), ":"+session) {
		t.Fatalf("resumed chat.iceServers = %v", chat["iceServers"])
	}
}

// TestHubChatting: the embedded relay's session check on one node is true
// only while the session is in a chat.
func TestHubChatting(t *testing.T) {
	h := iceHub()
	_, dial := serve(t, h)
	ctx := context.Background()
	chatting := func(id ids.SessionID) bool {
		t.Helper()
		ok, err := h.Chatting(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(3 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal(what)
			}
		}
	}
	a, b := dial(""), dial("")
	ida := ids.SessionID(readType(t, a, "welcome")["session"].(string))
	idb := ids.SessionID(readType(t, b, "welcome")["session"].(string))
	if chatting(ida) || chatting("s_never") {
		t.Fatal("Chatting before any match, or of an unknown session")
	}
	_ = a.WriteJSON(map[string]any{"type": "join"})
	readType(t, a, "waiting")
	if chatting(ida) {
		t.Fatal("Chatting while waiting")
	}
	_ = b.WriteJSON(map[string]any{"type": "join"})
	readType(t, b, "waiting")
	readType(t, a, "matched")
	readType(t, b, "matched")
	if !chatting(ida) || !chatting(idb) {
		t.Fatal("not Chatting after matched")
	}
	_ = a.WriteJSON(map[string]any{"type": "leave"})
	readType(t, b, "peer_left")
	eventually("Chatting after the chat ended", func() bool { return !chatting(ida) && !chatting(idb) })
	_ = b.Close() // b's session ends after its grace; a's goes on, idle
	if chatting(ida) {
		t.Fatal("idle session Chatting")
	}
}
