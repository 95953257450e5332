package loadgen

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/protocol"
)

// recorder stands in for the socket's writing half.
type recorder struct{ frames [][]byte }

func (r *recorder) WriteMessage(_ int, b []byte) error {
	r.frames = append(r.frames, bytes.Clone(b))
	return nil
}
func (r *recorder) SetWriteDeadline(time.Time) error { return nil }

func (r *recorder) take() [][]byte {
	f := r.frames
	r.frames = nil
	return f
}

// peer is a client under test with the server-side seq it has been sent.
type peer struct {
	c      *client
	rec    *recorder
	srvSeq int64
}

func newPeer(r *runner, seed uint64) *peer {
	c := newClient(r, rand.New(rand.NewPCG(seed, 0)))
	rec := &recorder{}
	c.w = rec
	return &peer{c: c, rec: rec}
}

// deliver hands the client a server frame built by the protocol package's
// encoder, as the server would send it.
func (p *peer) deliver(t *testing.T, build func(seq int64) []byte) {
	t.Helper()
	p.srvSeq++
	b := build(p.srvSeq)
	var f serverFrame
	if err := parseServerFrame(b, &f); err != nil {
		t.Fatalf("client cannot parse %s: %v", b, err)
	}
	if err := p.c.handle(&f); err != nil {
		t.Fatalf("handle %s: %v", b, err)
	}
}

// decodeAll checks every frame the client sent with the server's decoder
// and returns them.
func decodeAll(t *testing.T, frames [][]byte, lastSeq *int64) []protocol.Frame {
	t.Helper()
	var out []protocol.Frame
	for _, b := range frames {
		var f protocol.Frame
		if err := protocol.Decode(b, &f); err != nil {
			t.Fatalf("server refuses %s: %v", b, err)
		}
		if !f.HasSeq || f.Seq != *lastSeq+1 {
			t.Fatalf("frame %s: seq %d after %d", b, f.Seq, *lastSeq)
		}
		*lastSeq = f.Seq
		f.Data = bytes.Clone(f.Data)
		out = append(out, f)
	}
	return out
}

// relay turns the signal/chat/typing frames one client sent into the frames
// its partner receives.
func relay(t *testing.T, from []protocol.Frame, to *peer, room string) {
	t.Helper()
	for _, f := range from {
		switch f.Type {
		case protocol.TypeSignal:
			if !f.HasRoom || f.Room != room {
				t.Fatalf("signal for room %q, want %q", f.Room, room)
			}
			to.deliver(t, func(seq int64) []byte { return protocol.AppendSignal(nil, seq, room, f.Data) })
		case protocol.TypeChat:
			to.deliver(t, func(seq int64) []byte { return protocol.AppendChat(nil, seq, f.Text) })
		case protocol.TypeTyping:
			to.deliver(t, func(seq int64) []byte { return protocol.AppendTyping(nil, seq, f.Typing) })
		}
	}
}

func count(fs []protocol.Frame, typ protocol.Type) int {
	n := 0
	for _, f := range fs {
		if f.Type == typ {
			n++
		}
	}
	return n
}

// One complete video chat between two clients: join, matched, offer with
// candidates, answer with candidates, chats with typing, then next from
// both, every frame accepted by the server's decoder.
func TestClientVideoChatExchange(t *testing.T) {
	cfg := Default()
	cfg.TextRatio, cfg.InterestRatio, cfg.ChatDuration, cfg.ChatMsgs = 0, 1, 0, 3
	cfg.Interests = []string{"music"}
	r := newRunner(cfg)
	a, b := newPeer(r, 1), newPeer(r, 2)
	var seqA, seqB int64

	for _, p := range []*peer{a, b} {
		p.c.mu.Lock()
		if err := p.c.sendJoin(); err != nil {
			t.Fatal(err)
		}
		p.c.mu.Unlock()
	}
	joinA := decodeAll(t, a.rec.take(), &seqA)
	decodeAll(t, b.rec.take(), &seqB)
	if len(joinA) != 1 || joinA[0].Type != protocol.TypeJoin || joinA[0].Mode != protocol.ModeVideo ||
		len(joinA[0].Interests) != 1 || joinA[0].Interests[0] != "music" {
		t.Fatalf("join: %+v", joinA)
	}
	if r.stats.waiting.Load() != 2 {
		t.Fatalf("waiting gauge %d", r.stats.waiting.Load())
	}

	const room = "r_test"
	a.deliver(t, func(seq int64) []byte { return protocol.AppendWaiting(nil, seq) })
	a.deliver(t, func(seq int64) []byte {
		return protocol.AppendMatched(nil, seq, room, true, protocol.ModeVideo, []string{"music"})
	})
	b.deliver(t, func(seq int64) []byte {
		return protocol.AppendMatched(nil, seq, room, false, protocol.ModeVideo, []string{"music"})
	})
	if r.stats.chatting.Load() != 2 || r.stats.waiting.Load() != 0 {
		t.Fatalf("gauges after match: chatting %d waiting %d", r.stats.chatting.Load(), r.stats.waiting.Load())
	}
	offer := decodeAll(t, a.rec.take(), &seqA)
	if len(b.rec.frames) != 0 {
		t.Fatalf("responder sent before the offer: %s", b.rec.frames)
	}
	if len(offer) != 1+numCandidates+1 || count(offer, protocol.TypeSignal) != len(offer) {
		t.Fatalf("initiator sent %d frames, want offer + %d candidates + end", len(offer), numCandidates)
	}
	var sdp struct {
		T   int64 `json:"t"`
		SDP struct{ Type, SDP string }
	}
	if err := json.Unmarshal(offer[0].Data, &sdp); err != nil || sdp.SDP.Type != "offer" || len(sdp.SDP.SDP) < 3500 || sdp.T == 0 {
		t.Fatalf("offer data: type %q, %d bytes of SDP, t %d, %v", sdp.SDP.Type, len(sdp.SDP.SDP), sdp.T, err)
	}
	if string(offer[len(offer)-1].Data) != fmt0(`{"t":`, `,"candidate":null}`, offer[len(offer)-1].Data) {
		t.Fatalf("last signal is not the end of candidates: %s", offer[len(offer)-1].Data)
	}

	relay(t, offer, b, room)
	answer := decodeAll(t, b.rec.take(), &seqB)
	if count(answer, protocol.TypeSignal) != 1+numCandidates+1 || count(answer, protocol.TypeChat) != 3 || count(answer, protocol.TypeTyping) != 3 {
		t.Fatalf("responder sent %d signal, %d chat, %d typing", count(answer, protocol.TypeSignal), count(answer, protocol.TypeChat), count(answer, protocol.TypeTyping))
	}
	relay(t, answer, a, room)
	fromA := decodeAll(t, a.rec.take(), &seqA)
	// A has everything and sent its chats: with --chat-duration 0 it moves on.
	if count(fromA, protocol.TypeChat) != 3 || fromA[len(fromA)-1].Type != protocol.TypeNext {
		t.Fatalf("initiator after the answer sent %+v", fromA)
	}
	relay(t, fromA, b, room)
	fromB := decodeAll(t, b.rec.take(), &seqB)
	if len(fromB) != 1 || fromB[0].Type != protocol.TypeNext {
		t.Fatalf("responder after the chats sent %+v", fromB)
	}
	// The peer_left of a chat we already left changes nothing.
	b.deliver(t, func(seq int64) []byte { return protocol.AppendPeerLeft(nil, seq, "next") })
	if len(b.rec.frames) != 0 {
		t.Fatalf("late peer_left made the client send %s", b.rec.frames)
	}

	st := r.stats
	if st.matched.Load() != 2 || st.timeToMatch.Snapshot().Count != 2 {
		t.Errorf("matched %d, time-to-match samples %d", st.matched.Load(), st.timeToMatch.Snapshot().Count)
	}
	if n := st.signalLatency.Snapshot().Count; n != 2*(1+numCandidates+1) {
		t.Errorf("signal latency samples %d", n)
	}
	if n := st.chatLatency.Snapshot().Count; n != 6 {
		t.Errorf("chat latency samples %d", n)
	}
	if st.errors.Load() != 0 {
		t.Errorf("errors: %v %v", st.codes, st.kinds)
	}
	if st.waiting.Load() != 2 || st.chatting.Load() != 0 {
		t.Errorf("gauges after next: waiting %d chatting %d", st.waiting.Load(), st.chatting.Load())
	}
}

// fmt0 rebuilds data with only its t member kept, to compare shape.
func fmt0(pre, post string, data []byte) string {
	var d struct{ T int64 }
	json.Unmarshal(data, &d)
	b, _ := json.Marshal(d.T)
	return pre + string(b) + post
}

// A text chat has no signals; a partner who leaves mid-chat sends the
// client back to the queue with join; error frames and seq gaps count.
func TestClientTextChatPeerLeftAndErrors(t *testing.T) {
	cfg := Default()
	cfg.TextRatio, cfg.InterestRatio, cfg.ChatDuration, cfg.ChatMsgs = 1, 0, time.Hour, 2
	r := newRunner(cfg)
	a := newPeer(r, 3)
	var seq int64
	a.c.mu.Lock()
	a.c.sendJoin()
	a.c.mu.Unlock()
	join := decodeAll(t, a.rec.take(), &seq)
	if join[0].Mode != protocol.ModeText || join[0].Interests != nil {
		t.Fatalf("join %+v", join[0])
	}
	a.deliver(t, func(s int64) []byte { return protocol.AppendMatched(nil, s, "r1", false, protocol.ModeText, nil) })
	sent := decodeAll(t, a.rec.take(), &seq)
	if count(sent, protocol.TypeChat) != 2 || count(sent, protocol.TypeSignal) != 0 {
		t.Fatalf("text chat sent %+v", sent)
	}
	a.deliver(t, func(s int64) []byte { return protocol.AppendError(nil, s, protocol.CodeRateLimited, "slow down") })
	a.deliver(t, func(s int64) []byte { return protocol.AppendPeerLeft(nil, s, "left") })
	rejoin := decodeAll(t, a.rec.take(), &seq)
	if len(rejoin) != 1 || rejoin[0].Type != protocol.TypeJoin {
		t.Fatalf("after peer_left sent %+v", rejoin)
	}
	a.srvSeq++ // the server skips a seq
	a.deliver(t, func(s int64) []byte { return protocol.AppendWaiting(nil, s) })
	st := r.stats
	if st.codes["rate_limited"] != 1 || st.kinds["server_seq_gap"] != 1 || st.errors.Load() != 2 || st.reason["left"] != 1 {
		t.Fatalf("codes %v kinds %v reasons %v errors %d", st.codes, st.kinds, st.reason, st.errors.Load())
	}
}

func TestPayloadSizes(t *testing.T) {
	p := newPayloads(rand.New(rand.NewPCG(9, 9)))
	for _, sdp := range [][]byte{p.offerSDP, p.answerSDP} {
		var s string
		if err := json.Unmarshal(sdp, &s); err != nil {
			t.Fatal(err)
		}
		if len(s) < 3500 || len(s) > 5500 {
			t.Errorf("SDP is %d bytes, want about 4 KB", len(s))
		}
	}
	if len(p.cands) != numCandidates {
		t.Fatalf("%d candidates", len(p.cands))
	}
	for _, c := range p.cands {
		var ci struct {
			Candidate     string
			SDPMid        string
			SDPMLineIndex *int
		}
		if err := json.Unmarshal(c, &ci); err != nil || !bytes.HasPrefix([]byte(ci.Candidate), []byte("candidate:")) || ci.SDPMLineIndex == nil {
			t.Errorf("candidate %s: %v", c, err)
		}
	}
}

// A chat whose answer never comes is reported as stuck with what it was
// waiting for, and the client moves on with next.
func TestClientStuckChat(t *testing.T) {
	cfg := Default()
	cfg.TextRatio, cfg.ChatDuration = 0, 0
	r := newRunner(cfg)
	r.stuckAfter = 20 * time.Millisecond
	a := newPeer(r, 4)
	var seq int64
	a.c.mu.Lock()
	a.c.sendJoin()
	a.c.mu.Unlock()
	a.deliver(t, func(s int64) []byte { return protocol.AppendMatched(nil, s, "r1", true, protocol.ModeVideo, nil) })
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.c.mu.Lock()
		frames := len(a.rec.frames)
		a.c.mu.Unlock()
		if frames == 1+1+numCandidates+1+1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond) // the stuck timer is wall-clock by design
	}
	a.c.mu.Lock()
	sent := decodeAll(t, a.rec.take(), &seq)
	a.c.mu.Unlock()
	if last := sent[len(sent)-1]; last.Type != protocol.TypeNext {
		t.Fatalf("after the stuck timer the client sent %v last, want next", last.Type)
	}
	r.stats.mu.Lock()
	defer r.stats.mu.Unlock()
	if r.stats.kinds["stuck_chat_no_answer"] != 1 {
		t.Fatalf("kinds %v", r.stats.kinds)
	}
}

func TestClientMatchedOtherMode(t *testing.T) {
	cfg := Default()
	cfg.TextRatio = 1
	r := newRunner(cfg)
	a := newPeer(r, 5)
	a.c.mu.Lock()
	a.c.sendJoin()
	a.c.mu.Unlock()
	a.deliver(t, func(s int64) []byte { return protocol.AppendMatched(nil, s, "r1", true, protocol.ModeVideo, nil) })
	if r.stats.kinds["matched_other_mode"] != 1 {
		t.Fatalf("kinds %v", r.stats.kinds)
	}
}

// A join refused as overloaded is retried with next, which is valid in
// every state.
func TestClientRetriesWhenOverloaded(t *testing.T) {
	r := newRunner(Default())
	a := newPeer(r, 6)
	var seq int64
	a.c.mu.Lock()
	a.c.sendJoin()
	a.c.mu.Unlock()
	a.deliver(t, func(s int64) []byte { return protocol.AppendError(nil, s, protocol.CodeOverloaded, "queue full") })
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.c.mu.Lock()
		n := len(a.rec.frames)
		a.c.mu.Unlock()
		if n == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // the retry timer is wall-clock by design
	}
	a.c.mu.Lock()
	sent := decodeAll(t, a.rec.take(), &seq)
	a.c.mu.Unlock()
	if len(sent) != 2 || sent[1].Type != protocol.TypeNext {
		t.Fatalf("sent %+v, want join then next", sent)
	}
	if r.stats.codes["overloaded"] != 1 {
		t.Fatalf("codes %v", r.stats.codes)
	}
}
