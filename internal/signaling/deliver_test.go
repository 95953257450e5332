package signaling

import (
	"strings"
	"testing"

	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// A relay that reaches a session while it is being adopted from another
// node waits in pending until the adoption ends. By then the sender's read
// buffer holds other frames; the delayed signal must still carry its own
// data (CI once saw a partner receive another client's join in its place).
func TestDeliverWhileAdoptingKeepsData(t *testing.T) {
	s := &session{id: "s_b", phase: phaseArriving, state: match.Chatting,
		chat: chatView{room: "r_1", partner: "s_a"}}
	buf := []byte(`{"candidate":null}`)
	ok, moved := s.deliver("s_a", relayMsg{typ: protocol.TypeSignal, room: "r_1", data: buf})
	if !ok || moved {
		t.Fatalf("deliver while adopting = %v, %v; want queued", ok, moved)
	}
	copy(buf, `{"interests":null}`) // the read buffer is reused for the next frame

	s.mu.Lock()
	for _, f := range s.pending {
		f()
	}
	s.mu.Unlock()
	if len(s.held) != 1 {
		t.Fatalf("held %d frames after adoption, want 1", len(s.held))
	}
	got := string(s.held[0].data)
	if !strings.Contains(got, `"data":{"candidate":null}`) {
		t.Fatalf("delivered frame %s lost its data", got)
	}
}
