package signaling

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/modstore"
	"github.com/strangerchat/stranger/internal/pow"
)

func powHub(t *testing.T, o Options) *Hub {
	t.Helper()
	v, err := pow.New(pow.Options{Key: []byte("signaling-test-key-0123"), MaxNumber: 2000, Replay: pow.NewMemoryReplay(0)})
	if err != nil {
		t.Fatal(err)
	}
	o.Pow = v
	h := New(o)
	h.UseEngine(match.NewMemory(match.MemoryConfig{}, h))
	return h
}

// solveFrom solves the challenge in frame f's pow field.
func solveFrom(t *testing.T, f map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(f["pow"])
	var c pow.Challenge
	if err := json.Unmarshal(b, &c); err != nil || c.Challenge == "" {
		t.Fatalf("frame without a challenge: %v", f)
	}
	p, _, err := pow.Solve(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readError(t *testing.T, ws *websocket.Conn, code string) map[string]any {
	t.Helper()
	f := readType(t, ws, "error")
	if f["code"] != code {
		t.Fatalf("error %v, want %s", f, code)
	}
	return f
}

func TestPowFirstJoinNeedsSolution(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := powHub(t, Options{Metrics: NewMetrics(reg)})
	url, dial := serve(t, h)
	a := dial("")
	w := readType(t, a, "welcome")
	good := solveFrom(t, w)

	// Missing, then wrong: pow_required with a fresh challenge each time,
	// and the session stays idle (a leave gets no reply; the ping's pong
	// is the next frame).
	_ = a.WriteJSON(map[string]any{"type": "join", "seq": 1})
	e1 := readError(t, a, "pow_required")
	_ = a.WriteJSON(map[string]any{"type": "next", "pow": "bm90IGEgc29sdXRpb24=", "seq": 2})
	e2 := readError(t, a, "pow_required")
	if solveFrom(t, e1) == solveFrom(t, e2) || solveFrom(t, e1) == good {
		t.Fatal("pow_required did not bring a fresh challenge")
	}
	_ = a.WriteJSON(map[string]any{"type": "leave", "seq": 3})
	_ = a.WriteJSON(map[string]any{"type": "ping", "seq": 4})
	readType(t, a, "pong")

	// The welcome's solution works once.
	_ = a.WriteJSON(map[string]any{"type": "join", "pow": good, "seq": 5})
	readType(t, a, "waiting")
	// Later frames need none: leave and next again.
	_ = a.WriteJSON(map[string]any{"type": "leave", "seq": 6})
	_ = a.WriteJSON(map[string]any{"type": "next", "seq": 7})
	readType(t, a, "waiting")

	// Another session cannot reuse it.
	b := dial("")
	readType(t, b, "welcome")
	_ = b.WriteJSON(map[string]any{"type": "join", "pow": good})
	eb := readError(t, b, "pow_required")
	_ = b.WriteJSON(map[string]any{"type": "join", "pow": solveFrom(t, eb)})
	readType(t, b, "waiting")
	readType(t, b, "matched")
	readType(t, a, "matched")

	// A resume needs none: welcome without pow, and next works.
	tok := w["resumeToken"].(string)
	_ = a.Close()
	a2, _, err := websocket.DefaultDialer.Dial(url+"?resume="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a2.Close() })
	if rw := readType(t, a2, "welcome"); rw["resumed"] != true || rw["pow"] != nil {
		t.Fatalf("resumed welcome %v", rw)
	}
	_ = a2.WriteJSON(map[string]any{"type": "leave", "seq": 8})
	_ = a2.WriteJSON(map[string]any{"type": "next", "seq": 9})
	readType(t, a2, "waiting")

	for reason, want := range map[string]float64{"missing": 1, "malformed": 1, "used": 1, "wrong": 0} {
		if got := value(h.metrics.pow.refused[reason]); got != want {
			t.Errorf("refused{%s} = %v, want %v", reason, got, want)
		}
	}
	if got := value(h.metrics.pow.solved); got != 2 {
		t.Errorf("solved = %v, want 2", got)
	}
}

// A resume of a session that has not paid yet brings a fresh challenge and
// still asks for it.
func TestPowResumeBeforeJoin(t *testing.T) {
	h := powHub(t, Options{})
	url, dial := serve(t, h)
	a := dial("")
	w := readType(t, a, "welcome")
	_ = a.Close()
	a2, _, err := websocket.DefaultDialer.Dial(url+"?resume="+w["resumeToken"].(string), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a2.Close() })
	rw := readType(t, a2, "welcome")
	if rw["resumed"] != true {
		t.Fatalf("not resumed: %v", rw)
	}
	_ = a2.WriteJSON(map[string]any{"type": "join"})
	readError(t, a2, "pow_required")
	_ = a2.WriteJSON(map[string]any{"type": "join", "pow": solveFrom(t, rw)})
	readType(t, a2, "waiting")
}

// In the check order pow_required comes right before banned: a banned
// client without a solution is asked for one, and with one it is banned.
func TestPowBeforeBanned(t *testing.T) {
	h := powHub(t, Options{Moderation: banAll{}, Identify: func(string) identity.Hash { return "00000000000000aa" }})
	_, dial := serve(t, h)
	a := dial("")
	w := readType(t, a, "welcome")
	_ = a.WriteJSON(map[string]any{"type": "join"})
	readError(t, a, "pow_required")
	_ = a.WriteJSON(map[string]any{"type": "join", "pow": solveFrom(t, w)})
	readError(t, a, "banned")
}

// With proof of work off nothing changes: no pow in welcome, join works.
func TestPowOff(t *testing.T) {
	h := New(Options{})
	h.UseEngine(match.NewMemory(match.MemoryConfig{}, h))
	_, dial := serve(t, h)
	a := dial("")
	if w := readType(t, a, "welcome"); w["pow"] != nil {
		t.Fatalf("welcome %v", w)
	}
	_ = a.WriteJSON(map[string]any{"type": "join"})
	readType(t, a, "waiting")
}

func value(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// Whether a session owes its proof of work moves with it to another node.
func TestPowOwedMovesWithHandover(t *testing.T) {
	h := powHub(t, Options{})
	for _, owed := range []powState{powOwed, powSettled} {
		s := &session{id: "s_x", hub: h, phase: phaseConnected, pow: owed}
		tr, err := DecodeTransfer(EncodeTransfer(s.transferLocked()))
		if err != nil {
			t.Fatal(err)
		}
		moved := &session{id: "s_x", hub: h, phase: phaseArriving}
		if !moved.arrive(&conn{ip: "127.0.0.1"}, tr, "tok", "0") {
			t.Fatal("arrive refused")
		}
		if moved.pow != owed {
			t.Errorf("owed %v arrived as %v", owed, moved.pow)
		}
	}
}

// banAll is a Moderator that has banned everyone.
type banAll struct{}

func (banAll) Banned(identity.Hash) bool      { return true }
func (banAll) AllowReport(identity.Hash) bool { return true }
func (banAll) File(context.Context, modstore.Report) (Filed, error) {
	return Filed{}, nil
}
